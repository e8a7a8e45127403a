// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_ipv6_ext.ks: walk up to four IPv6 extension
 * headers (hop-by-hop, routing, destination options) to the upper-layer protocol and count it;
 * drop fragments, over-long chains and truncated extension headers. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define NEXTHDR_HOP 0
#define NEXTHDR_TCP 6
#define NEXTHDR_UDP 17
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_ICMPV6 58
#define NEXTHDR_DEST 60
#define MAX_EXT_HEADERS 4

enum { CLS_TCP = 0, CLS_UDP = 1, CLS_ICMPV6 = 2, CLS_OTHER = 3, CLS_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} l4_packets SEC(".maps");

/* .bss, in declaration order */
__u64 ext_headers_walked = 0;
__u64 fragments_dropped = 0;
__u64 malformed_dropped = 0;

static __always_inline bool skippable(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING || nexthdr == NEXTHDR_DEST;
}

SEC("xdp")
int ipv6_ext(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct ipv6_opt_hdr *ext;
	void *cur = ip6 + 1;
	__u32 cls;
	__u64 *cnt;
	__u8 nexthdr;
	int i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((void *)(ip6 + 1) > data_end) {
		__sync_fetch_and_add(&malformed_dropped, 1);
		return XDP_DROP;
	}

	nexthdr = ip6->nexthdr;
#pragma unroll
	for (i = 0; i < MAX_EXT_HEADERS; i++) {
		if (nexthdr == NEXTHDR_FRAGMENT)
			goto fragment;
		if (!skippable(nexthdr))
			break;
		ext = cur;
		if ((void *)(ext + 1) > data_end) {
			__sync_fetch_and_add(&malformed_dropped, 1);
			return XDP_DROP;
		}
		nexthdr = ext->nexthdr;
		cur += (ext->hdrlen + 1) * 8;
		__sync_fetch_and_add(&ext_headers_walked, 1);
	}
	if (nexthdr == NEXTHDR_FRAGMENT)
		goto fragment;
	if (skippable(nexthdr)) {
		/* more extension headers than we walk */
		__sync_fetch_and_add(&malformed_dropped, 1);
		return XDP_DROP;
	}

	switch (nexthdr) {
	case NEXTHDR_TCP:
		cls = CLS_TCP;
		break;
	case NEXTHDR_UDP:
		cls = CLS_UDP;
		break;
	case NEXTHDR_ICMPV6:
		cls = CLS_ICMPV6;
		break;
	default:
		cls = CLS_OTHER;
	}
	cnt = bpf_map_lookup_elem(&l4_packets, &cls);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_PASS;

fragment:
	__sync_fetch_and_add(&fragments_dropped, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
