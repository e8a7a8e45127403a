// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_ipv6_nexthdr.ks: histogram of IPv6
 * next-header values, optionally dropping one of them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD

/* config ipv6_filter { drop_enabled: bool = false, drop_nexthdr: u8 = 43 } */
struct ipv6_filter_config {
	bool drop_enabled;
	__u8 drop_nexthdr;
};

struct ipv6_filter_config ipv6_filter SEC(".data.ipv6_filter") = {
	.drop_enabled = false,
	.drop_nexthdr = 43,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} nexthdr_counts SEC(".maps");

/* .bss, in declaration order */
__u64 ipv6_packets = 0;
__u64 ipv6_dropped = 0;
__u64 bad_version = 0;

SEC("xdp")
int ipv6_nexthdr(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u32 nh;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	/* fixed 40-byte IPv6 header */
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	if (ip6->version != 6) {
		__sync_fetch_and_add(&bad_version, 1);
		return XDP_DROP;
	}

	__sync_fetch_and_add(&ipv6_packets, 1);
	nh = ip6->nexthdr;
	cnt = bpf_map_lookup_elem(&nexthdr_counts, &nh);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	if (ipv6_filter.drop_enabled && nh == ipv6_filter.drop_nexthdr) {
		__sync_fetch_and_add(&ipv6_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
