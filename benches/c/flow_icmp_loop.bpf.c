// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_icmp_loop.ks: drop ICMP messages whose type is
 * on the configured list (at most 8 types), counted per type. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define MAX_BLOCKED 8

struct icmp_policy_config {
	__u8 blocked_types[MAX_BLOCKED];
	__u32 num_blocked;
};

struct icmp_policy_config icmp_policy SEC(".data.icmp_policy") = {
	.num_blocked = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} dropped_by_type SEC(".maps");

__u64 icmp_passed = 0;

SEC("xdp")
int icmp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp;
	__u32 type, i;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;

	type = icmp->type;
	for (i = 0; i < MAX_BLOCKED; i++) {
		if (i >= icmp_policy.num_blocked)
			break;
		if (icmp_policy.blocked_types[i] == type) {
			cnt = bpf_map_lookup_elem(&dropped_by_type, &type);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
			return XDP_DROP;
		}
	}
	__sync_fetch_and_add(&icmp_passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
