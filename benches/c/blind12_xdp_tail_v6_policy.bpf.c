// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_xdp_tail_v6_policy.ks: an IPv6 policy in XDP as a chain of
 * tail-called stages sharing a per-CPU scratch entry. v6_entry finds IPv6 (after at most one
 * 802.1Q tag); v6_ext walks hop-by-hop (first only), routing, fragment, destination-options and
 * AH headers for at most max_ext (<= 8) headers, noting kinds, routing type, segments left and
 * fragment state, and drops longer chains; later fragments go straight to v6_policy, the rest
 * to v6_l4 (TCP/UDP ports, TCP flags, ICMPv6 type). v6_policy drops type 0 routing headers if
 * configured, then applies `rules` by (protocol, destination port / ICMPv6 type / 0 for later
 * fragments), else the default. Cut-off headers pass. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100

#define NEXTHDR_HOP 0
#define NEXTHDR_TCP 6
#define NEXTHDR_UDP 17
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_ICMPV6 58
#define NEXTHDR_DEST 60

#define SEEN_HOP 1
#define SEEN_ROUTING 2
#define SEEN_FRAGMENT 4
#define SEEN_DEST 8
#define SEEN_AUTH 16

#define FRAG_NONE 0
#define FRAG_FIRST 1
#define FRAG_LATER 2

#define MAX_EXT 8
/* no frame reaches this far; stored offsets are tested against it for the verifier */
#define MAX_OFF 0x3fff

#define ACT_DROP 1

enum { V_TRUNCATED, V_NOT_V6, V_BAD_HOP, V_TOO_MANY, V_RH0, V_RULE_PASS, V_RULE_DROP,
       V_DEFAULT_PASS, V_DEFAULT_DROP, V_MAX };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_EXT = 0, PROG_L4 = 1, PROG_POLICY = 2 };

struct v6pol_config {
	__u32 max_ext;
	bool drop_rh0;
	bool default_drop;
};

struct V6State {
	__u32 l3_off;
	__u32 off;
	__u8 nexthdr;
	__u8 ext_count;
	__u8 ext_mask;
	__u8 rh_type;
	__u8 segs_left;
	__u8 frag;
	__u8 tcp_flags;
	__u8 icmp_type;
	__be16 sport;
	__be16 dport;
};

struct RuleKey {
	__u8 proto;
	__u16 port;
};

struct Rule {
	__u64 hits;
	__u8 action;
};

struct v6pol_config v6pol SEC(".data.v6pol") = {
	.max_ext = 4,
	.drop_rh0 = true,
	.default_drop = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct V6State);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct RuleKey);
	__type(value, struct Rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, V_MAX);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 9);
	__type(key, __u32);
	__type(value, __u64);
} ext_depth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

static __always_inline void stage(__u32 n)
{
	__u64 *v = bpf_map_lookup_elem(&stage_hits, &n);

	if (v)
		*v += 1;
}

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline struct V6State *state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline bool is_ext(__u8 nh)
{
	return nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_FRAGMENT ||
	       nh == NEXTHDR_DEST || nh == NEXTHDR_AUTH;
}

SEC("xdp")
int v6_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct V6State *st;
	__u32 l3 = sizeof(*eth);
	__be16 proto;

	stage(0);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end) {
			count(&verdicts, V_TRUNCATED);
			return XDP_PASS;
		}
		proto = vh->h_vlan_encapsulated_proto;
		l3 += sizeof(*vh);
	}
	if (proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end) {
		count(&verdicts, V_TRUNCATED);
		return XDP_PASS;
	}
	if (ip6->version != 6) {
		count(&verdicts, V_NOT_V6);
		return XDP_DROP;
	}
	st = state();
	if (st) {
		__builtin_memset(st, 0, sizeof(*st));
		st->l3_off = l3;
		st->off = l3 + sizeof(*ip6);
		st->nexthdr = ip6->nexthdr;
	}
	bpf_tail_call(ctx, &prog_array, PROG_EXT);
	return XDP_PASS;
}

SEC("xdp")
int v6_ext(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off, len, limit, i, count_ = 0;
	struct V6State *st;
	__u8 nh, mask = 0;

	stage(1);
	st = state();
	if (!st)
		return XDP_PASS;
	off = st->off;
	nh = st->nexthdr;
	limit = v6pol.max_ext;
	if (limit > MAX_EXT)
		limit = MAX_EXT;
	for (i = 0; i < MAX_EXT; i++) {
		__u8 *ext;

		if (i >= limit || !is_ext(nh))
			break;
		if (off > MAX_OFF) {
			count(&verdicts, V_TRUNCATED);
			return XDP_PASS;
		}
		ext = data + off;
		if ((void *)(ext + 8) > data_end) {
			count(&verdicts, V_TRUNCATED);
			return XDP_PASS;
		}
		len = ((__u32)ext[1] + 1) * 8;
		switch (nh) {
		case NEXTHDR_HOP:
			if (count_) {
				count(&verdicts, V_BAD_HOP);
				return XDP_DROP;
			}
			mask |= SEEN_HOP;
			break;
		case NEXTHDR_ROUTING:
			mask |= SEEN_ROUTING;
			st->rh_type = ext[2];
			st->segs_left = ext[3];
			break;
		case NEXTHDR_FRAGMENT:
			mask |= SEEN_FRAGMENT;
			len = 8;
			st->frag = ((ext[2] << 8 | ext[3]) & 0xfff8) ? FRAG_LATER : FRAG_FIRST;
			break;
		case NEXTHDR_AUTH:
			mask |= SEEN_AUTH;
			len = ((__u32)ext[1] + 2) * 4;
			break;
		default:
			mask |= SEEN_DEST;
		}
		count_++;
		nh = ext[0];
		off += len;
		if (st->frag == FRAG_LATER)
			break;
	}
	if (st->frag != FRAG_LATER && is_ext(nh)) {
		count(&verdicts, V_TOO_MANY);
		return XDP_DROP;
	}
	st->off = off;
	st->nexthdr = nh;
	st->ext_count = count_;
	st->ext_mask = mask;
	bpf_tail_call(ctx, &prog_array, st->frag != FRAG_LATER ? PROG_L4 : PROG_POLICY);
	return XDP_PASS;
}

SEC("xdp")
int v6_l4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct V6State *st;
	__u32 off;

	stage(2);
	st = state();
	if (!st)
		return XDP_PASS;
	off = st->off;
	if (st->nexthdr == NEXTHDR_TCP) {
		struct tcphdr *tcp = data + (off & MAX_OFF);

		if (off > MAX_OFF || (void *)(tcp + 1) > data_end)
			goto truncated;
		st->sport = tcp->source;
		st->dport = tcp->dest;
		st->tcp_flags = ((__u8 *)tcp)[13];
	} else if (st->nexthdr == NEXTHDR_UDP) {
		struct udphdr *udp = data + (off & MAX_OFF);

		if (off > MAX_OFF || (void *)(udp + 1) > data_end)
			goto truncated;
		st->sport = udp->source;
		st->dport = udp->dest;
	} else if (st->nexthdr == NEXTHDR_ICMPV6) {
		struct icmp6hdr *icmp = data + (off & MAX_OFF);

		if (off > MAX_OFF || (void *)icmp + 4 > data_end)
			goto truncated;
		st->icmp_type = icmp->icmp6_type;
	}
	bpf_tail_call(ctx, &prog_array, PROG_POLICY);
	return XDP_PASS;
truncated:
	count(&verdicts, V_TRUNCATED);
	return XDP_PASS;
}

SEC("xdp")
int v6_policy(struct xdp_md *ctx)
{
	struct RuleKey key;
	struct V6State *st;
	struct Rule *rule;
	__u16 port = 0;

	stage(3);
	st = state();
	if (!st)
		return XDP_PASS;
	count(&ext_depth, st->ext_count);
	if (v6pol.drop_rh0 && (st->ext_mask & SEEN_ROUTING) && st->rh_type == 0) {
		count(&verdicts, V_RH0);
		return XDP_DROP;
	}
	if (st->frag != FRAG_LATER) {
		if (st->nexthdr == NEXTHDR_TCP || st->nexthdr == NEXTHDR_UDP)
			port = bpf_ntohs(st->dport);
		else if (st->nexthdr == NEXTHDR_ICMPV6)
			port = st->icmp_type;
	}
	__builtin_memset(&key, 0, sizeof(key));
	key.proto = st->nexthdr;
	key.port = port;
	rule = bpf_map_lookup_elem(&rules, &key);
	if (rule) {
		rule->hits += 1;
		if (rule->action == ACT_DROP) {
			count(&verdicts, V_RULE_DROP);
			return XDP_DROP;
		}
		count(&verdicts, V_RULE_PASS);
		return XDP_PASS;
	}
	if (v6pol.default_drop) {
		count(&verdicts, V_DEFAULT_DROP);
		return XDP_DROP;
	}
	count(&verdicts, V_DEFAULT_PASS);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
