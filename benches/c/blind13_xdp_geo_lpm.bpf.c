// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_xdp_geo_lpm.ks: region policy by source prefix. IPv4 and
 * IPv6 source addresses are looked up in two LPM tries giving a region id (0 when unmatched);
 * the region's policy (Allow, Deny, Rate with a packet budget) or the configured default
 * action decides; per-region per-CPU packet/byte/drop counters. The .ks throwing lookup
 * becomes a function returning a fault code. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define REGION_UNKNOWN 0

enum { ACT_ALLOW = 0, ACT_DENY = 1, ACT_RATE = 2 };

enum {
	F_NOT_IP = 1,
	F_CUT = 2,
	F_BAD_VERSION = 3,
};

struct geo_config {
	__u32 default_action;
	bool drop_malformed;
};

struct geo_config geo SEC(".data.geo") = {
	.default_action = ACT_ALLOW,
	.drop_malformed = true,
};

struct V4Prefix {
	__u32 prefixlen;
	__be32 addr;
};

struct V6Prefix {
	__u32 prefixlen;
	struct in6_addr addr;
};

struct Policy {
	__u32 action;
	__u32 budget;
};

struct RegionStats {
	__u64 packets;
	__u64 bytes;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct V4Prefix);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} geo_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct V6Prefix);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} geo_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct Policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct RegionStats);
} region_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} rate_used SEC(".maps");

__u64 not_ip = 0;
__u64 malformed = 0;

/* The region of the frame's source address, or a fault code. */
static __always_inline int source_region(struct xdp_md *ctx, __u32 *region)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 *r;

	if ((void *)(eth + 1) > data_end)
		return F_NOT_IP;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct V4Prefix key;

		if ((void *)(ip + 1) > data_end)
			return F_CUT;
		if (ip->version != 4)
			return F_BAD_VERSION;
		key.prefixlen = 32;
		key.addr = ip->saddr;
		r = bpf_map_lookup_elem(&geo_v4, &key);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct V6Prefix key;

		if ((void *)(ip6 + 1) > data_end)
			return F_CUT;
		if (ip6->version != 6)
			return F_BAD_VERSION;
		key.prefixlen = 128;
		key.addr = ip6->saddr;
		r = bpf_map_lookup_elem(&geo_v6, &key);
	} else {
		return F_NOT_IP;
	}
	*region = r ? *r : REGION_UNKNOWN;
	return 0;
}

/* rate_used[region] += 1, then the new count */
static __always_inline __u64 charge(__u32 region)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&rate_used, &region);
	if (v)
		return __sync_add_and_fetch(v, 1);
	if (!bpf_map_update_elem(&rate_used, &region, &one, BPF_NOEXIST))
		return 1;
	v = bpf_map_lookup_elem(&rate_used, &region);
	if (v)
		return __sync_add_and_fetch(v, 1);
	return 0;
}

SEC("xdp")
int geo_lpm(struct xdp_md *ctx)
{
	__u32 region = REGION_UNKNOWN, action, budget = 0;
	struct RegionStats *s;
	struct Policy *p;
	int err, verdict;
	__u64 len;

	err = source_region(ctx, &region);
	if (err == F_NOT_IP) {
		__sync_fetch_and_add(&not_ip, 1);
		return XDP_PASS;
	}
	if (err) {
		__sync_fetch_and_add(&malformed, 1);
		return geo.drop_malformed ? XDP_DROP : XDP_PASS;
	}
	len = ctx->data_end - ctx->data;

	s = bpf_map_lookup_elem(&region_stats, &region);
	if (!s) {
		struct RegionStats zero = {};

		bpf_map_update_elem(&region_stats, &region, &zero, BPF_ANY);
		s = bpf_map_lookup_elem(&region_stats, &region);
	}
	/* per-CPU slot: plain adds */
	if (s) {
		s->packets += 1;
		s->bytes += len;
	}

	action = geo.default_action;
	p = bpf_map_lookup_elem(&policies, &region);
	if (p) {
		action = p->action;
		budget = p->budget;
	}
	switch (action) {
	case ACT_ALLOW:
		verdict = XDP_PASS;
		break;
	case ACT_DENY:
		verdict = XDP_DROP;
		break;
	case ACT_RATE:
		verdict = charge(region) > budget ? XDP_DROP : XDP_PASS;
		break;
	default:
		verdict = XDP_PASS;
	}
	if (verdict == XDP_DROP && s)
		s->dropped += 1;
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
