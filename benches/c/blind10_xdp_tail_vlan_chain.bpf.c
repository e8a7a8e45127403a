// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_xdp_tail_vlan_chain.ks: per-VLAN port ACLs as a tail-call
 * chain. vlan_entry walks up to two VLAN tags, leaves the ids and the L3 offset in a per-CPU
 * scratch slot and tail-calls vlan_ipv4 or vlan_ipv6, which look {innermost VLAN, TCP/UDP
 * destination port} up in `acl` (hits counted), else the VLAN's default, else the config's.
 * Denials and frames cut off inside a header are dropped and reported on a ring buffer;
 * verdicts are counted per family, stage runs per stage. A failed tail call passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_VID_MASK 0x0fff
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_OFFSET 0x1fff

#define MAX_TAGS 2
#define MAX_L3_OFF 22

enum { ST_ENTRY, ST_IPV4, ST_IPV6, ST_MAX };
enum { V4_PASS, V4_DROP, V6_PASS, V6_DROP, TRUNCATED, MALFORMED, TOO_MANY_TAGS };
enum { WHY_RULE = 1, WHY_VLAN_DEFAULT, WHY_DEFAULT, WHY_TRUNCATED, WHY_MALFORMED };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_IPV4 = 0, PROG_IPV6 = 1 };

enum Action {
	ALLOW = 1,
	DENY = 2,
};

struct chain_config {
	bool default_deny;
};

struct Scratch {
	__u32 l3_off;
	__u16 outer_vid;
	__u16 inner_vid;
	__u8 tags;
};

struct AclKey {
	__u16 vlan;
	__u16 port;	/* host byte order */
};

struct DropEvent {
	__u16 vlan;
	__u8 proto;
	__u8 reason;
	__u16 port;
	__u8 verdict;
};

struct chain_config chain SEC(".data.chain") = {
	.default_deny = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct Scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct AclKey);
	__type(value, enum Action);
} acl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, enum Action);
} vlan_defaults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct AclKey);
	__type(value, __u64);
} acl_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} drop_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

__u64 events_lost = 0;

static __always_inline void count_stage(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&stage_hits, &stage);

	if (v)
		*v += 1;
}

static __always_inline void count_verdict(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&verdicts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_hit(struct AclKey *key)
{
	__u64 *v = bpf_map_lookup_elem(&acl_hits, key);
	__u64 one = 1;

	if (!v) {
		if (!bpf_map_update_elem(&acl_hits, key, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&acl_hits, key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

static __always_inline void report_drop(__u16 vlan, __u8 proto, __u16 port, __u8 reason)
{
	struct DropEvent *ev = bpf_ringbuf_reserve(&drop_events, sizeof(*ev), 0);

	if (!ev) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	ev->vlan = vlan;
	ev->proto = proto;
	ev->reason = reason;
	ev->port = port;
	ev->verdict = XDP_DROP;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline int truncated(__u16 vlan)
{
	count_verdict(TRUNCATED);
	report_drop(vlan, 0, 0, WHY_TRUNCATED);
	return XDP_DROP;
}

static __always_inline int malformed(__u16 vlan)
{
	count_verdict(MALFORMED);
	report_drop(vlan, 0, 0, WHY_MALFORMED);
	return XDP_DROP;
}

static __always_inline int acl_verdict(__u16 vlan, __u8 proto, __u16 port, __u32 pass_slot)
{
	struct AclKey key = { .vlan = vlan, .port = port };
	bool deny = chain.default_deny;
	__u8 why = WHY_DEFAULT;
	enum Action *action;

	action = bpf_map_lookup_elem(&acl, &key);
	if (action) {
		count_hit(&key);
		deny = *action == DENY;
		why = WHY_RULE;
	} else {
		action = bpf_map_lookup_elem(&vlan_defaults, &vlan);
		if (action) {
			deny = *action == DENY;
			why = WHY_VLAN_DEFAULT;
		}
	}
	if (!deny) {
		count_verdict(pass_slot);
		return XDP_PASS;
	}
	count_verdict(pass_slot + 1);
	report_drop(vlan, proto, port, why);
	return XDP_DROP;
}

SEC("xdp")
int vlan_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth), tags = 0, zero = 0;
	__u16 vids[MAX_TAGS] = {};
	struct Scratch *s;
	__be16 proto;
	int i;

	count_stage(ST_ENTRY);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	for (i = 0; i < MAX_TAGS; i++) {
		struct vlan_hdr *vh = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return truncated(vids[0]);
		vids[i] = bpf_ntohs(vh->h_vlan_TCI) & VLAN_VID_MASK;
		proto = vh->h_vlan_encapsulated_proto;
		off += sizeof(*vh);
		tags++;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		count_verdict(TOO_MANY_TAGS);
		return XDP_PASS;
	}

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s) {
		s->l3_off = off;
		s->outer_vid = vids[0];
		s->inner_vid = tags ? vids[tags - 1] : 0;
		s->tags = tags;
	}
	if (proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &prog_array, PROG_IPV4);
	else if (proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &prog_array, PROG_IPV6);
	return XDP_PASS;
}

SEC("xdp")
int vlan_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct Scratch *s;
	struct udphdr *ports;
	struct iphdr *ip;
	__u32 l3, zero = 0;
	__u16 vlan;

	count_stage(ST_IPV4);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return XDP_PASS;
	l3 = s->l3_off;
	if (l3 > MAX_L3_OFF)
		return XDP_PASS;
	vlan = s->inner_vid;
	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return truncated(vlan);
	if (ip->version != 4 || ip->ihl < 5)
		return malformed(vlan);
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)ports + 4 > data_end)
		return truncated(vlan);
	return acl_verdict(vlan, ip->protocol, bpf_ntohs(ports->dest), V4_PASS);
}

SEC("xdp")
int vlan_ipv6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udphdr *ports;
	struct ipv6hdr *ip6;
	struct Scratch *s;
	__u32 l3, zero = 0;
	__u16 vlan;

	count_stage(ST_IPV6);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return XDP_PASS;
	l3 = s->l3_off;
	if (l3 > MAX_L3_OFF)
		return XDP_PASS;
	vlan = s->inner_vid;
	ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end)
		return truncated(vlan);
	if (ip6->version != 6)
		return malformed(vlan);
	if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
		return XDP_PASS;
	ports = (void *)(ip6 + 1);
	if ((void *)ports + 4 > data_end)
		return truncated(vlan);
	return acl_verdict(vlan, ip6->nexthdr, bpf_ntohs(ports->dest), V6_PASS);
}

char LICENSE[] SEC("license") = "GPL";
