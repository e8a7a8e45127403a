// SPDX-License-Identifier: GPL-2.0
/* C twin of blind16_xdp_dns_qname_hash.ks: XDP DNS QNAME blocklist (FNV-1a over the
 * lower-cased wire-format name), per-QTYPE counters and a malformed-name counter. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define FNV_OFFSET	2166136261u
#define FNV_PRIME	16777619u
#define MAX_LABELS	8
#define MAX_LABEL_LEN	63

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} blocked_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} qtype_counts SEC(".maps");

__u64 inspected = 0;
__u64 malformed = 0;

SEC("xdp")
int dns_qname_hash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct dnshdr *dns;
	__u32 hash = FNV_OFFSET, key, ihl;
	__u64 *cnt;
	__u8 *p;
	int l;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ihl = ip->ihl;
	if (ihl < 5)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	udp = (void *)ip + ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(53))
		return XDP_PASS;
	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end)
		return XDP_PASS;
	if ((dns->flags & bpf_htons(0x8000)) || !dns->qdcount)
		return XDP_PASS;
	__sync_fetch_and_add(&inspected, 1);

	p = (void *)(dns + 1);
	for (l = 0; l < MAX_LABELS; l++) {
		__u32 len, j;
		__u8 *next;

		if ((void *)(p + 1) > data_end)
			goto bad;
		len = *p++;
		if (!len)
			break;
		if (len > MAX_LABEL_LEN)
			goto bad;
		hash = (hash ^ len) * FNV_PRIME;
		/* formed while len is still a range: the label walk below
		 * narrows len to one value per exit, next stays one state */
		next = p + len;
		for (j = 0; j < MAX_LABEL_LEN; j++) {
			__u8 c;

			if (j >= len)
				break;
			if ((void *)(p + j + 1) > data_end)
				goto bad;
			c = p[j];
			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			hash = (hash ^ c) * FNV_PRIME;
		}
		p = next;
	}
	if (l == MAX_LABELS)
		goto bad;
	/* p is past the zero octet: QTYPE follows */
	if ((void *)(p + 2) > data_end)
		goto bad;
	key = ((p[0] << 8) | p[1]) % 64;

	cnt = bpf_map_lookup_elem(&qtype_counts, &key);
	if (cnt)
		*cnt += 1;
	cnt = bpf_map_lookup_elem(&blocked_names, &hash);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
		return XDP_DROP;
	}
	return XDP_PASS;

bad:
	__sync_fetch_and_add(&malformed, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
