// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_xdp_tail_classifier.ks: an XDP classifier built from tail
 * calls. The entry skips up to two VLAN tags and jumps to the IPv4 or IPv6 stage, which jump to
 * the shared TCP or UDP stage; offsets travel in a per-CPU scratch slot. UDP to the configured
 * port and SYNs without ACK to the configured TCP port are dropped; every stage counts its
 * packets in a per-CPU array; a failed tail call passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define MAX_VLAN_TAGS 2
#define MAX_L3_OFF 22
#define MAX_L4_OFF 82

enum { STAGE_ENTRY, STAGE_IPV4, STAGE_IPV6, STAGE_TCP, STAGE_UDP, STAGE_MAX };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_IPV4 = 0, PROG_IPV6 = 1, PROG_TCP = 2, PROG_UDP = 3 };

struct classifier_config {
	__u16 udp_port;
	__u16 tcp_port;
};

struct ParseState {
	__u32 l3_off;
	__u32 l4_off;
};

struct classifier_config classifier SEC(".data.classifier") = {
	.udp_port = 0,
	.tcp_port = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ParseState);
} parse_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

/* .bss, in declaration order */
__u64 udp_dropped = 0;
__u64 syn_dropped = 0;

static __always_inline void count_stage(__u32 stage)
{
	__u64 *hits = bpf_map_lookup_elem(&stage_hits, &stage);

	if (hits)
		*hits += 1;
}

static __always_inline struct ParseState *get_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&parse_state, &zero);
}

SEC("xdp")
int classify_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ParseState *st;
	__u32 off = sizeof(*eth);
	__u16 proto;
	int i;

	count_stage(STAGE_ENTRY);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *vlan = data + off;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		off += sizeof(*vlan);
	}
	/* a third tag leaves a VLAN EtherType here, which no stage takes */
	st = get_state();
	if (st) {
		st->l3_off = off;
		st->l4_off = 0;
	}
	switch (proto) {
	case ETH_P_IP:
		bpf_tail_call(ctx, &prog_array, PROG_IPV4);
		break;
	case ETH_P_IPV6:
		bpf_tail_call(ctx, &prog_array, PROG_IPV6);
		break;
	}
	return XDP_PASS;
}

SEC("xdp")
int ipv4_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ParseState *st;
	struct iphdr *ip;
	__u32 l3, ihl;

	count_stage(STAGE_IPV4);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l3 = st->l3_off;
	if (l3 > MAX_L3_OFF)
		return XDP_PASS;
	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;	/* a later fragment has no L4 header */
	st->l4_off = l3 + ihl;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		bpf_tail_call(ctx, &prog_array, PROG_TCP);
		break;
	case IPPROTO_UDP:
		bpf_tail_call(ctx, &prog_array, PROG_UDP);
		break;
	}
	return XDP_PASS;
}

SEC("xdp")
int ipv6_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ParseState *st;
	struct ipv6hdr *ip6;
	__u32 l3;

	count_stage(STAGE_IPV6);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l3 = st->l3_off;
	if (l3 > MAX_L3_OFF)
		return XDP_PASS;
	ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	/* extension headers are not followed: only TCP or UDP right after the fixed header */
	st->l4_off = l3 + sizeof(*ip6);
	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
		bpf_tail_call(ctx, &prog_array, PROG_TCP);
		break;
	case IPPROTO_UDP:
		bpf_tail_call(ctx, &prog_array, PROG_UDP);
		break;
	}
	return XDP_PASS;
}

SEC("xdp")
int tcp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ParseState *st;
	struct tcphdr *tcp;
	__u32 l4;
	__u16 port;

	count_stage(STAGE_TCP);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l4 = st->l4_off;
	if (l4 > MAX_L4_OFF)
		return XDP_PASS;
	tcp = data + l4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	port = classifier.tcp_port;
	if (port && bpf_ntohs(tcp->dest) == port && tcp->syn && !tcp->ack) {
		__sync_fetch_and_add(&syn_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int udp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ParseState *st;
	struct udphdr *udp;
	__u32 l4;
	__u16 port;

	count_stage(STAGE_UDP);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l4 = st->l4_off;
	if (l4 > MAX_L4_OFF)
		return XDP_PASS;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	port = classifier.udp_port;
	if (port && bpf_ntohs(udp->dest) == port) {
		__sync_fetch_and_add(&udp_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
