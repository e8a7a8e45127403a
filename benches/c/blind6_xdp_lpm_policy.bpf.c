// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_xdp_lpm_policy.ks: IPv4 prefix policy from two LPM tries
 * (destination rules win over source rules). Allow passes, Count books packets/bytes per rule id
 * in a per-CPU array and passes, Deny books and drops; unknown actions pass. Parse failures are
 * counted per reason (the .ks throw/catch becomes a reason code and a jump); the deferred
 * seen_packets count runs on every exit, so it is done first. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define E_SHORT 1
#define E_NOT_IPV4 2
#define E_BAD_HEADER 3

#define MAX_RULE_IDS 64

struct V4Key {
	__u32 prefixlen;
	__u32 addr;	/* network byte order */
};

enum RuleAction { Allow = 0, Deny = 1, Count = 2 };

struct Rule {
	__u32 action;	/* enum RuleAction */
	__u32 rule_id;
};

struct RuleStats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct V4Key);
	__type(value, struct Rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} dst_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct V4Key);
	__type(value, struct Rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} src_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RULE_IDS);
	__type(key, __u32);
	__type(value, struct RuleStats);
} rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} parse_errors SEC(".maps");

__u64 seen_packets = 0;
__u64 unmatched = 0;

static __always_inline void book(__u32 rule_id, __u64 bytes)
{
	struct RuleStats *s = bpf_map_lookup_elem(&rule_stats, &rule_id);

	if (s) {
		s->packets += 1;
		s->bytes += bytes;
	}
}

SEC("xdp")
int lpm_policy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct V4Key key;
	struct Rule *r;
	__u32 reason;
	__u64 *cnt;

	__sync_fetch_and_add(&seen_packets, 1);

	if ((void *)(eth + 1) > data_end) {
		reason = E_SHORT;
		goto fail;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		reason = E_NOT_IPV4;
		goto fail;
	}
	if ((void *)(ip + 1) > data_end) {
		reason = E_SHORT;
		goto fail;
	}
	if (ip->version != 4 || ip->ihl < 5) {
		reason = E_BAD_HEADER;
		goto fail;
	}

	key.prefixlen = 32;
	key.addr = ip->daddr;
	r = bpf_map_lookup_elem(&dst_rules, &key);
	if (!r) {
		key.addr = ip->saddr;
		r = bpf_map_lookup_elem(&src_rules, &key);
		if (!r) {
			__sync_fetch_and_add(&unmatched, 1);
			return XDP_PASS;
		}
	}

	switch (r->action) {
	case Count:
		book(r->rule_id, data_end - data);
		return XDP_PASS;
	case Deny:
		book(r->rule_id, data_end - data);
		return XDP_DROP;
	default:	/* Allow, and actions this program does not know */
		return XDP_PASS;
	}

fail:
	cnt = bpf_map_lookup_elem(&parse_errors, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return reason == E_NOT_IPV4 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
