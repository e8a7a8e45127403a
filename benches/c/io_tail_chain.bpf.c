// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_tail_chain.ks: an XDP edge filter whose entry
 * tail-calls per-protocol stages (IPv4 -> ICMP, IPv6, ARP), each counting and deciding. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define ND_ROUTER_ADVERT 134
#define ARPOP_REPLY 2
#define ICMP_ECHO 8
#define IPPROTO_ICMPV6 58

enum Stage { Entry = 0, Ipv4 = 1, Ipv6 = 2, Arp = 3, Icmp = 4 };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_IPV4 = 0, PROG_IPV6 = 1, PROG_ARP = 2, PROG_ICMP = 3 };

/* config edge { drop_router_adverts: bool = true, drop_arp_replies: bool = false,
 *               max_ping_bytes: u16 = 1024 } */
struct edge_config {
	bool drop_router_adverts;
	bool drop_arp_replies;
	__u16 max_ping_bytes;	/* largest IPv4 echo request let through (total length) */
};

struct edge_config edge SEC(".data.edge") = {
	.drop_router_adverts = true,
	.drop_arp_replies = false,
	.max_ping_bytes = 1024,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

/* source (network order) -> packets dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} blocked_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

static __always_inline void count_stage(__u32 stage)
{
	__u64 *hits = bpf_map_lookup_elem(&stage_hits, &stage);

	if (hits)
		__sync_fetch_and_add(hits, 1);
}

SEC("xdp")
int edge_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	count_stage(Entry);
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	switch (bpf_ntohs(eth->h_proto)) {
	case ETH_P_IP:
		bpf_tail_call(ctx, &prog_array, PROG_IPV4);
		break;
	case ETH_P_IPV6:
		bpf_tail_call(ctx, &prog_array, PROG_IPV6);
		break;
	case ETH_P_ARP:
		bpf_tail_call(ctx, &prog_array, PROG_ARP);
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
	__u64 *drops;

	count_stage(Ipv4);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	drops = bpf_map_lookup_elem(&blocked_v4, &ip->saddr);
	if (drops) {
		__sync_fetch_and_add(drops, 1);
		return XDP_DROP;
	}
	if (ip->protocol == IPPROTO_ICMP)
		bpf_tail_call(ctx, &prog_array, PROG_ICMP);
	return XDP_PASS;
}

SEC("xdp")
int ipv6_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u8 *icmp6_type = (void *)(ip6 + 1);

	count_stage(Ipv6);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	if (ip6->nexthdr == IPPROTO_ICMPV6 && (void *)(icmp6_type + 1) <= data_end &&
	    *icmp6_type == ND_ROUTER_ADVERT && edge.drop_router_adverts)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int arp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct arphdr *arp = data + sizeof(struct ethhdr);

	count_stage(Arp);
	if ((void *)(arp + 1) > data_end)
		return XDP_DROP;
	if (arp->ar_op == bpf_htons(ARPOP_REPLY) && edge.drop_arp_replies)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int icmp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct icmphdr *icmp;

	count_stage(Icmp);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_DROP;
	if (icmp->type == ICMP_ECHO && bpf_ntohs(ip->tot_len) > edge.max_ping_bytes)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
