// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_xdp_tail_stages.ks: an XDP port filter as a
 * pipeline of tail-called stages. The dispatcher jumps to the IPv4 or IPv6 stage by EtherType;
 * those check their header, leave the transport offset and protocol in a per-CPU scratch slot
 * and jump to the shared L4 stage for TCP/UDP, which drops denied destination ports (counted
 * per port) and counts the rest per protocol. Every stage counts the packets it sees. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET 0x1FFF
#define MAX_L4_OFF 128

enum stage { STAGE_DISPATCH = 0, STAGE_IPV4 = 1, STAGE_IPV6 = 2, STAGE_L4 = 3, STAGE_MAX };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_IPV4 = 0, PROG_IPV6 = 1, PROG_L4 = 2 };

/* Handed from an IP stage to the L4 stage (a tail call passes only the context). */
struct l4_info {
	__u8 l4_off;
	__u8 protocol;
	__u8 family;
};

struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* config pipeline { drop_fragments: bool = false } */
struct pipeline_config {
	bool drop_fragments;
};

struct pipeline_config pipeline SEC(".data.pipeline") = {
	.drop_fragments = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l4_info);
} scratch SEC(".maps");

/* destination port (host order) -> packets dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
} deny_ports SEC(".maps");

/* protocol -> packets let through */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u8);
	__type(value, __u64);
} l4_passed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

__u64 fragments_seen = 0;
__u64 denied_total = 0;

static __always_inline void count_stage(__u32 stage)
{
	__u64 *hits = bpf_map_lookup_elem(&stage_hits, &stage);

	if (hits)
		__sync_fetch_and_add(hits, 1);
}

static __always_inline bool is_transport(__u8 protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP;
}

static __always_inline void hand_over(__u8 l4_off, __u8 protocol, __u8 family)
{
	__u32 zero = 0;
	struct l4_info *slot = bpf_map_lookup_elem(&scratch, &zero);

	if (slot) {
		slot->l4_off = l4_off;
		slot->protocol = protocol;
		slot->family = family;
	}
}

SEC("xdp")
int stage_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	count_stage(STAGE_DISPATCH);
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	switch (bpf_ntohs(eth->h_proto)) {
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
	struct iphdr *ip = data + sizeof(struct ethhdr);

	count_stage(STAGE_IPV4);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (ip->ihl < 5)
		return XDP_DROP;
	if (ip->frag_off & bpf_htons(IP_OFFSET)) {
		/* a later fragment carries no ports */
		__sync_fetch_and_add(&fragments_seen, 1);
		if (pipeline.drop_fragments)
			return XDP_DROP;
		return XDP_PASS;
	}
	if (!is_transport(ip->protocol))
		return XDP_PASS;
	hand_over(sizeof(struct ethhdr) + ip->ihl * 4, ip->protocol, 4);
	bpf_tail_call(ctx, &prog_array, PROG_L4);
	return XDP_PASS;
}

SEC("xdp")
int ipv6_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

	count_stage(STAGE_IPV6);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	if (!is_transport(ip6->nexthdr))
		return XDP_PASS;	/* extension headers and ICMPv6 are not filtered */
	hand_over(sizeof(struct ethhdr) + sizeof(*ip6), ip6->nexthdr, 6);
	bpf_tail_call(ctx, &prog_array, PROG_L4);
	return XDP_PASS;
}

SEC("xdp")
int l4_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l4_info info = {}, *slot;
	struct l4_ports *ports;
	__u64 *drops, *passed, one = 1;
	__u32 zero = 0;
	__u16 dport;

	count_stage(STAGE_L4);
	slot = bpf_map_lookup_elem(&scratch, &zero);
	if (slot)
		info = *slot;
	if (info.l4_off > MAX_L4_OFF)
		return XDP_DROP;
	ports = data + info.l4_off;
	if ((void *)(ports + 1) > data_end)
		return XDP_DROP;
	dport = bpf_ntohs(ports->dest);
	drops = bpf_map_lookup_elem(&deny_ports, &dport);
	if (drops) {
		__sync_fetch_and_add(drops, 1);
		__sync_fetch_and_add(&denied_total, 1);
		return XDP_DROP;
	}
	passed = bpf_map_lookup_elem(&l4_passed, &info.protocol);
	if (passed) {
		__sync_fetch_and_add(passed, 1);
	} else if (bpf_map_update_elem(&l4_passed, &info.protocol, &one, BPF_NOEXIST)) {
		/* another CPU created it first */
		passed = bpf_map_lookup_elem(&l4_passed, &info.protocol);
		if (passed)
			__sync_fetch_and_add(passed, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
