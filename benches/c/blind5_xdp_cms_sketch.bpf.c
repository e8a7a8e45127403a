// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_cms_sketch.ks: count-min sketch (4 rows x 256 columns in
 * one array map, key = row * 256 + column) over IPv4 source addresses. Each row hashes the
 * address with its own multiplier (top 8 bits of the 32-bit product); the estimate is the
 * minimum of the four counters after incrementing them. Sources above the configured threshold
 * are dropped and counted per source (insert-or-add). .bss: total_packets@0, malformed@8. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ROWS 4
#define COLS 256

struct cms_config {
	__u32 threshold;
};

struct cms_config cms SEC(".data.cms") = {
	.threshold = 10000,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ROWS * COLS);
	__type(key, __u32);
	__type(value, __u32);
} sketch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} heavy_drops SEC(".maps");

__u64 total_packets = 0;
__u64 malformed = 0;

static __always_inline __u32 row_mult(__u32 row)
{
	switch (row) {
	case 0: return 0x9e3779b1;
	case 1: return 0x85ebca77;
	case 2: return 0xc2b2ae3d;
	default: return 0x27d4eb2f;
	}
}

static __always_inline void count_drop(__u32 src)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&heavy_drops, &src);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&heavy_drops, &src, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&heavy_drops, &src);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int cms_sketch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 src, estimate = 0xffffffff;

	__sync_fetch_and_add(&total_packets, 1);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	src = ip->saddr;

#pragma unroll
	for (__u32 row = 0; row < ROWS; row++) {
		__u32 slot = row * COLS + ((src * row_mult(row)) >> 24);
		__u32 *c = bpf_map_lookup_elem(&sketch, &slot);
		__u32 cnt = 0;

		if (c)
			cnt = __sync_add_and_fetch(c, 1);
		if (cnt < estimate)
			estimate = cnt;
	}

	if (estimate > cms.threshold) {
		count_drop(src);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
