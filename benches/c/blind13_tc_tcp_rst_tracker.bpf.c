// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_tc_tcp_rst_tracker.ks: per-flow TCP SYN/FIN/RST accounting
 * on tc ingress. IPv4 and IPv6 TCP segments are keyed by 5-tuple (IPv4 as ::ffff:a.b.c.d) in an
 * LRU hash of flow records; a bare SYN restarts a known flow's RST count; RSTs past the
 * configured limit are an RST storm and are shot (or only counted). Per-family per-CPU stats.
 * The .ks throwing readers become functions returning a fault code and one reject block. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define SLOT_IPV4 0
#define SLOT_IPV6 1
#define SLOT_OTHER 2

enum {
	F_NOT_IP = 1,
	F_NOT_TCP = 2,
	F_CUT = 3,
	F_BAD_HEADER = 4,
};

struct rst_guard_config {
	__u32 max_rsts;
	bool shoot;
};

struct rst_guard_config rst_guard SEC(".data.rst_guard") = {
	.max_rsts = 8,
	.shoot = true,
};

struct FlowKey {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 family;
	__u8 pad[3];
};

struct FlowState {
	__u64 packets;
	__u64 bytes;
	__u32 syns;
	__u32 fins;
	__u32 rsts;
	__u8 last_flags;
};

struct FamilyStats {
	__u64 segments;
	__u64 syns;
	__u64 fins;
	__u64 rsts;
	__u64 new_flows;
	__u64 storms;
	__u64 malformed;
	__u64 not_tcp;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct FlowKey);
	__type(value, struct FlowState);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct FamilyStats);
} family_stats SEC(".maps");

/* Fills the key's addresses and family; *l4_off is where the TCP header starts. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct FlowKey *key, __u32 *l4_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > data_end)
		return F_CUT;
	if (ip->version != 4 || ip->ihl < 5)
		return F_BAD_HEADER;
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
		return F_NOT_TCP;
	key->saddr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
	key->saddr.in6_u.u6_addr32[3] = ip->saddr;
	key->daddr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
	key->daddr.in6_u.u6_addr32[3] = ip->daddr;
	key->family = 4;
	*l4_off = sizeof(struct ethhdr) + ip->ihl * 4;
	return 0;
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct FlowKey *key, __u32 *l4_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

	if ((void *)(ip6 + 1) > data_end)
		return F_CUT;
	if (ip6->version != 6)
		return F_BAD_HEADER;
	if (ip6->nexthdr != IPPROTO_TCP)
		return F_NOT_TCP;
	key->saddr = ip6->saddr;
	key->daddr = ip6->daddr;
	key->family = 6;
	*l4_off = sizeof(struct ethhdr) + sizeof(*ip6);
	return 0;
}

SEC("tcx/ingress")
int rst_tracker(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct FamilyStats *s;
	struct FlowState *f;
	struct FlowKey key;
	struct tcphdr *tcp;
	__u32 slot = SLOT_OTHER, l4_off = 0, rsts;
	bool syn, fin, rst, fresh = false;
	__u8 flags;
	int err;

	__builtin_memset(&key, 0, sizeof(key));
	if ((void *)(eth + 1) > data_end) {
		err = F_NOT_IP;
		goto reject;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		slot = SLOT_IPV4;
		err = parse_ipv4(skb, &key, &l4_off);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		slot = SLOT_IPV6;
		err = parse_ipv6(skb, &key, &l4_off);
	} else {
		err = F_NOT_IP;
	}
	if (err)
		goto reject;

	tcp = data + l4_off;
	if ((void *)(tcp + 1) > data_end) {
		err = F_CUT;
		goto reject;
	}
	if (tcp->doff < 5) {
		err = F_BAD_HEADER;
		goto reject;
	}
	flags = ((__u8 *)tcp)[13];
	key.sport = tcp->source;
	key.dport = tcp->dest;
	syn = flags & TCP_SYN;
	fin = flags & TCP_FIN;
	rst = flags & TCP_RST;

	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		if (syn && !(flags & TCP_ACK))
			f->rsts = 0;
		f->packets += 1;
		f->bytes += skb->len;
		f->syns += syn;
		f->fins += fin;
		f->rsts += rst;
		f->last_flags = flags;
		rsts = f->rsts;
	} else {
		struct FlowState nf;

		__builtin_memset(&nf, 0, sizeof(nf));
		nf.packets = 1;
		nf.bytes = skb->len;
		nf.syns = syn;
		nf.fins = fin;
		nf.rsts = rst;
		nf.last_flags = flags;
		bpf_map_update_elem(&flows, &key, &nf, BPF_ANY);
		rsts = rst;
		fresh = true;
	}

	/* per-CPU slot: plain adds */
	s = bpf_map_lookup_elem(&family_stats, &slot);
	if (s) {
		s->segments += 1;
		s->syns += syn;
		s->fins += fin;
		s->rsts += rst;
		s->new_flows += fresh;
	}
	if (rst && rsts > rst_guard.max_rsts) {
		if (s)
			s->storms += 1;
		if (rst_guard.shoot)
			return TC_ACT_SHOT;
	}
	return TC_ACT_OK;

reject:
	s = bpf_map_lookup_elem(&family_stats, &slot);
	if (err == F_BAD_HEADER) {
		if (s)
			s->malformed += 1;
		return TC_ACT_SHOT;
	}
	if (err == F_CUT) {
		if (s)
			s->malformed += 1;
		return TC_ACT_OK;
	}
	if (s)
		s->not_tcp += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
