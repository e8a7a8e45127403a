// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_dns_qtype.ks: for DNS queries to UDP port 53,
 * skip the question name (at most 16 length bytes), count the QTYPE in one of six buckets and
 * drop ANY queries. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53
#define MAX_LABELS 16
#define DNS_QR 0x8000

enum qtype_bucket { B_A = 0, B_AAAA = 1, B_MX = 2, B_TXT = 3, B_ANY = 4, B_OTHER = 5, B_MAX };

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, B_MAX);
	__type(key, __u32);
	__type(value, __u64);
} qtype_counts SEC(".maps");

__u64 dns_queries = 0;
__u64 names_unparsed = 0;

static __always_inline __u32 bucket_of(__u32 qtype)
{
	switch (qtype) {
	case 1:
		return B_A;
	case 28:
		return B_AAAA;
	case 15:
		return B_MX;
	case 16:
		return B_TXT;
	case 255:
		return B_ANY;
	default:
		return B_OTHER;
	}
}

SEC("xdp")
int dns_qtype(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	struct dnshdr *dns;
	unsigned char *p;
	__u32 ihl, i, len, qtype, bucket;
	__u64 *cnt;
	bool ended = false;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1FFF)))
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	udp = (void *)ip + ihl;
	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(DNS_PORT) || (dns->flags & bpf_htons(DNS_QR)) || !dns->qdcount)
		return XDP_PASS;
	__sync_fetch_and_add(&dns_queries, 1);

	/* skip the question name: length byte, label, ..., zero */
	p = (void *)(dns + 1);
	for (i = 0; i < MAX_LABELS; i++) {
		if (p + 1 > (unsigned char *)data_end)
			break;
		len = *p;
		if (len == 0) {
			ended = true;
			p++;
			break;
		}
		if (len > 63)
			break;
		p += len + 1;
	}
	if (!ended || p + 2 > (unsigned char *)data_end) {
		__sync_fetch_and_add(&names_unparsed, 1);
		return XDP_PASS;
	}
	qtype = (__u32)p[0] << 8 | p[1];
	bucket = bucket_of(qtype);
	cnt = bpf_map_lookup_elem(&qtype_counts, &bucket);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return bucket == B_ANY ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
