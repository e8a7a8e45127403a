// SPDX-License-Identifier: GPL-2.0
/* blind14_xdp_dns_name_len.bpf.c — C twin of blind14_xdp_dns_name_len.ks: walks the first
 * QNAME of IPv4/UDP DNS queries, keeps a name-length histogram and drops names whose length,
 * longest label or label count exceed the dnslen limits (or that use compression pointers). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define MAX_WALK 33 /* 32 labels and the root label */

enum drop_reason {
	DROP_POINTER = 0,
	DROP_NAME_TOO_LONG = 1,
	DROP_LABEL_TOO_LONG = 2,
	DROP_TOO_MANY_LABELS = 3,
};

struct dns_hdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct dnslen_config {
	__u32 max_name;
	__u32 max_label;
	__u32 max_labels;
};

struct dnslen_config dnslen SEC(".data.dnslen") = {
	.max_name = 254,
	.max_label = 63,
	.max_labels = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} name_hist SEC(".maps");

__u64 hdr_truncated = 0;
__u64 name_truncated = 0;
__u64 not_query = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int drop(__u32 reason)
{
	count(&drops, reason);
	return XDP_DROP;
}

SEC("xdp")
int dns_name_len(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct dns_hdr *dns;
	__u32 name_len = 0, labels = 0, longest = 0, len, bucket;
	__u64 ihl, udp_off, off;
	__u8 *p;
	int i;

	if ((void *)(eth + 1) > data_end) {
		__sync_fetch_and_add(&hdr_truncated, 1);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&hdr_truncated, 1);
		return XDP_PASS;
	}
	ihl = ip->ihl;
	if (ip->version != 4 || ihl < 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	udp_off = sizeof(*eth) + ihl * 4;
	udp = data + udp_off;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&hdr_truncated, 1);
		return XDP_PASS;
	}
	if (udp->dest != bpf_htons(53))
		return XDP_PASS;
	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end) {
		__sync_fetch_and_add(&hdr_truncated, 1);
		return XDP_PASS;
	}
	if ((dns->flags & bpf_htons(0x8000)) || !dns->qdcount) {
		__sync_fetch_and_add(&not_query, 1);
		return XDP_PASS;
	}

	/* Walk the first question's QNAME. */
	off = udp_off + sizeof(*udp) + sizeof(*dns);
	for (i = 0; i < MAX_WALK; i++) {
		p = data + off;
		if ((void *)(p + 1) > data_end) {
			__sync_fetch_and_add(&name_truncated, 1);
			return XDP_PASS;
		}
		len = *p;
		if (len == 0)
			goto complete;
		if ((len & 0xc0) == 0xc0)
			return drop(DROP_POINTER);
		if ((void *)(p + 1 + len) > data_end) {
			__sync_fetch_and_add(&name_truncated, 1);
			return XDP_PASS;
		}
		labels++;
		name_len += len + 1;
		if (len > longest)
			longest = len;
		off += 1 + len;
	}
	return drop(DROP_TOO_MANY_LABELS);

complete:
	bucket = name_len / 16;
	if (bucket > 15)
		bucket = 15;
	count(&name_hist, bucket);

	if (name_len > dnslen.max_name)
		return drop(DROP_NAME_TOO_LONG);
	if (longest > dnslen.max_label)
		return drop(DROP_LABEL_TOO_LONG);
	if (labels > dnslen.max_labels)
		return drop(DROP_TOO_MANY_LABELS);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
