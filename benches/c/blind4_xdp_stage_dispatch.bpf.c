// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_stage_dispatch.ks: an entry program parses Ethernet and
 * one optional VLAN tag and tail-calls the IPv4, IPv6 or ARP stage; unknown EtherTypes are
 * counted and pass. prog_array slots: 0 = ipv4_stage, 1 = ipv6_stage, 2 = arp_stage. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8

#define STAGE_IPV4 0
#define STAGE_IPV6 1
#define STAGE_ARP 2
#define STAGE_UNKNOWN 3

struct dispatch_config {
	__u8 drop_proto;
	__u32 arp_guard_addr;
};

struct VlanHdr {
	__be16 tci;
	__be16 inner_proto;
};

struct ArpEth {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

struct dispatch_config dispatch SEC(".data.dispatch") = {
	.drop_proto = 0,
	.arp_guard_addr = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} ipv4_protos SEC(".maps");

static __always_inline void count_stage(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&stage_counts, &stage);

	if (v)
		*v += 1;
}

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* 14, or 18 behind one VLAN tag. */
static __always_inline __u32 l3_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if (data + 18 > data_end)
		return 14;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return 18;
	return 14;
}

SEC("xdp")
int ipv4_stage(struct xdp_md *ctx)
{
	struct iphdr *ip;
	__u8 drop;

	count_stage(STAGE_IPV4);
	ip = (void *)(long)ctx->data + l3_offset(ctx);
	if ((void *)(ip + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	array_inc(&ipv4_protos, ip->protocol);
	drop = dispatch.drop_proto;
	if (drop && ip->protocol == drop) {
		array_inc(&stage_drops, STAGE_IPV4);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int ipv6_stage(struct xdp_md *ctx)
{
	struct ipv6hdr *ip6;

	count_stage(STAGE_IPV6);
	ip6 = (void *)(long)ctx->data + l3_offset(ctx);
	if ((void *)(ip6 + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	if (ip6->hop_limit == 0) {
		array_inc(&stage_drops, STAGE_IPV6);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int arp_stage(struct xdp_md *ctx)
{
	struct ArpEth *arp;
	__u32 guarded, target;

	count_stage(STAGE_ARP);
	arp = (void *)(long)ctx->data + l3_offset(ctx);
	if ((void *)(arp + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4)
		return XDP_PASS;
	guarded = dispatch.arp_guard_addr;
	if (!guarded || arp->op != bpf_htons(1))
		return XDP_PASS;
	target = (__u32)arp->tpa[0] << 24 | (__u32)arp->tpa[1] << 16 |
		 (__u32)arp->tpa[2] << 8 | arp->tpa[3];
	if (target == guarded) {
		array_inc(&stage_drops, STAGE_ARP);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int dispatch_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		struct VlanHdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vlan->inner_proto);
	}
	switch (proto) {
	case ETH_P_IP:
		bpf_tail_call(ctx, &prog_array, 0);
		break;
	case ETH_P_IPV6:
		bpf_tail_call(ctx, &prog_array, 1);
		break;
	case ETH_P_ARP:
		bpf_tail_call(ctx, &prog_array, 2);
		break;
	default:
		count_stage(STAGE_UNKNOWN);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
