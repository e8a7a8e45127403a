// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_ttl_filter.ks: TTL histogram of
 * IPv4 packets; packets below the configured TTL are dropped (or only counted). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* config filter { min_ttl: u8 = 2, count_only: bool = false } */
struct filter_config {
	__u8 min_ttl;
	bool count_only;
};

struct filter_config filter SEC(".data.filter") = {
	.min_ttl = 2,
	.count_only = false,
};

/* key: TTL / 32; value: packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ttl_buckets SEC(".maps");

__u64 low_ttl_packets = 0;

SEC("xdp")
int ttl_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 bucket;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	bucket = ip->ttl / 32;
	cnt = bpf_map_lookup_elem(&ttl_buckets, &bucket);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	if (ip->ttl >= filter.min_ttl)
		return XDP_PASS;

	__sync_fetch_and_add(&low_ttl_packets, 1);
	return filter.count_only ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
