// SPDX-License-Identifier: GPL-2.0
/* Neighbour Discovery guard: per-source token bucket for ICMPv6 RS/RA/NS/NA,
 * hop-limit 255 enforcement, RA guard (link-local sources only), and a
 * verdict counter updated on every exit of the ND path. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define IPPROTO_ICMPV6	58

#define ND_ROUTER_SOLICIT	133
#define ND_ROUTER_ADVERT	134
#define ND_NEIGHBOR_SOLICIT	135
#define ND_NEIGHBOR_ADVERT	136

enum {
	V_PASS		= 0,
	V_BAD_CODE	= 1,
	V_BAD_HOP_LIMIT	= 2,
	V_BAD_SOURCE	= 3,
	V_TRUNCATED	= 4,
	V_RATE_LIMITED	= 5,
};

struct nd_limits_config {
	__u64 burst;
	__u64 refill_ns;
	__u64 router_cost;
	bool require_hop_limit;
};

struct nd_limits_config nd_limits SEC(".data.nd_limits") = {
	.burst = 16,
	.refill_ns = 100000000,
	.router_cost = 4,
	.require_hop_limit = true,
};

struct nd_bucket {
	__u64 tokens;
	__u64 last_ns;
	__u64 passed;
	__u64 limited;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct in6_addr);
	__type(value, struct nd_bucket);
} nd_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} nd_verdicts SEC(".maps");

__u64 nd_seen = 0;

static __always_inline void account(__u32 verdict)
{
	__u64 *cnt = bpf_map_lookup_elem(&nd_verdicts, &verdict);

	if (cnt)
		*cnt += 1;
}

static __always_inline int nd_police(struct ipv6hdr *ip6, __u8 *icmp,
				     void *data_end, __u32 *verdict)
{
	__u8 type = icmp[0];
	__u32 min_len = 24;
	__u64 cost = 1;

	if (icmp[1] != 0) {
		*verdict = V_BAD_CODE;
		return XDP_DROP;
	}
	if (nd_limits.require_hop_limit && ip6->hop_limit != 255) {
		*verdict = V_BAD_HOP_LIMIT;
		return XDP_DROP;
	}
	if (type == ND_ROUTER_SOLICIT) {
		min_len = 8;
		cost = nd_limits.router_cost;
	} else if (type == ND_ROUTER_ADVERT) {
		min_len = 16;
		cost = nd_limits.router_cost;
		/* RA guard: routers advertise from their link-local address. */
		if (ip6->saddr.in6_u.u6_addr8[0] != 0xfe ||
		    (ip6->saddr.in6_u.u6_addr8[1] & 0xc0) != 0x80) {
			*verdict = V_BAD_SOURCE;
			return XDP_DROP;
		}
	}
	if ((void *)(icmp + min_len) > data_end) {
		*verdict = V_TRUNCATED;
		return XDP_DROP;
	}

	struct in6_addr key = ip6->saddr;
	__u64 now = bpf_ktime_get_ns();
	struct nd_bucket *b = bpf_map_lookup_elem(&nd_buckets, &key);

	if (b) {
		__u64 elapsed = now - b->last_ns;

		if (elapsed >= nd_limits.refill_ns) {
			__u64 tokens = b->tokens + elapsed / nd_limits.refill_ns;

			if (tokens > nd_limits.burst)
				tokens = nd_limits.burst;
			b->tokens = tokens;
			b->last_ns = now;
		}
		if (b->tokens < cost) {
			b->limited += 1;
			*verdict = V_RATE_LIMITED;
			return XDP_DROP;
		}
		b->tokens -= cost;
		b->passed += 1;
		return XDP_PASS;
	}

	struct nd_bucket nb = {
		.tokens = nd_limits.burst > cost ? nd_limits.burst - cost : 0,
		.last_ns = now,
		.passed = 1,
		.limited = 0,
	};

	bpf_map_update_elem(&nd_buckets, &key, &nb, BPF_ANY);
	return XDP_PASS;
}

SEC("xdp")
int nd_ratelimit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth);
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		l3 += sizeof(*vlan);
	}
	if (proto != ETH_P_IPV6)
		return XDP_PASS;

	struct ipv6hdr *ip6 = data + l3;

	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (ip6->nexthdr != IPPROTO_ICMPV6)
		return XDP_PASS;

	__u8 *icmp = (void *)(ip6 + 1);

	if ((void *)(icmp + 4) > data_end)
		return XDP_PASS;
	if (icmp[0] < ND_ROUTER_SOLICIT || icmp[0] > ND_NEIGHBOR_ADVERT)
		return XDP_PASS;

	__u32 verdict = V_PASS;
	int action;

	__sync_fetch_and_add(&nd_seen, 1);
	action = nd_police(ip6, icmp, data_end, &verdict);
	account(verdict);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
