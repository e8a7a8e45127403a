// C twin of blind15_xdp_v6_prefix_hops.ks: IPv6 source-prefix policy behind up to 4
// extension headers, per-verdict counters.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_DSTOPTS 60
#define MAX_EXT_HDRS 4

enum {
	V_NOT_IPV6 = 0,
	V_NO_RULE = 1,
	V_ALLOWED = 2,
	V_TRUNCATED = 3,
	V_HOP_LIMIT = 4,
	V_PROTO = 5,
	V_FRAGMENT = 6,
	V_EXT_CHAIN = 7,
};

struct v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct v6_rule {
	__u8 min_hop_limit;
	__u8 allowed_proto; /* 0: any */
	bool allow_frag;
	__u8 reserved;
	__u32 rule_id;
};

struct ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct v6_key);
	__type(value, struct v6_rule);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

__u64 ext_skipped = 0;
__u32 last_drop_rule = 0;

struct v6pol_config {
	__u8 hop_floor;
	bool pass_unmatched;
};

struct v6pol_config v6pol SEC(".data.v6pol") = {
	.hop_floor = 1,
	.pass_unmatched = true,
};

static __always_inline int tally(__u32 reason, int verdict)
{
	__u64 *cnt = bpf_map_lookup_elem(&verdicts, &reason);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return verdict;
}

static __always_inline bool is_ext_hdr(__u8 nh)
{
	return nh == NH_HOPOPTS || nh == NH_ROUTING || nh == NH_FRAGMENT ||
	       nh == NH_DSTOPTS;
}

SEC("xdp")
int v6_prefix_hops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct v6_rule *rule;
	struct v6_key key;
	bool fragmented = false;
	__u32 off = sizeof(*eth) + sizeof(*ip6);
	__u8 nh, hop;

	if ((void *)(eth + 1) > data_end)
		return tally(V_NOT_IPV6, XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return tally(V_NOT_IPV6, XDP_PASS);
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return tally(V_TRUNCATED, XDP_DROP);

	hop = ip6->hop_limit;
	nh = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		struct ext_hdr *ext;
		__u32 len = 8;

		if (!is_ext_hdr(nh))
			break;
		/* off <= 54 + 3 * 2048: no mask needed for the verifier */
		ext = data + off;
		if ((void *)ext + 8 > data_end)
			return tally(V_TRUNCATED, XDP_DROP);
		if (nh == NH_FRAGMENT)
			fragmented = true;
		else
			len = ((__u32)ext->hdrlen + 1) * 8;
		nh = ext->nexthdr;
		off += len;
		__sync_fetch_and_add(&ext_skipped, 1);
	}
	if (is_ext_hdr(nh))
		return tally(V_EXT_CHAIN, XDP_DROP);

	key.prefixlen = 128;
	__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
	rule = bpf_map_lookup_elem(&policy, &key);
	if (rule) {
		if (hop < rule->min_hop_limit) {
			last_drop_rule = rule->rule_id;
			return tally(V_HOP_LIMIT, XDP_DROP);
		}
		if (fragmented && !rule->allow_frag) {
			last_drop_rule = rule->rule_id;
			return tally(V_FRAGMENT, XDP_DROP);
		}
		if (rule->allowed_proto != 0 && rule->allowed_proto != nh) {
			last_drop_rule = rule->rule_id;
			return tally(V_PROTO, XDP_DROP);
		}
		return tally(V_ALLOWED, XDP_PASS);
	}
	if (hop < v6pol.hop_floor)
		return tally(V_HOP_LIMIT, XDP_DROP);
	if (v6pol.pass_unmatched)
		return tally(V_NO_RULE, XDP_PASS);
	return tally(V_NO_RULE, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
