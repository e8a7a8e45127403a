// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/xdp_pipeline.ks: an XDP pipeline chained by tail
 * calls (entry -> IPv4 stage -> TCP or UDP stage with a per-port deny list). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum stage { STAGE_ENTRY = 0, STAGE_IPV4 = 1, STAGE_TCP = 2, STAGE_UDP = 3 };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first
 * appearance in the source */
enum { PROG_IPV4 = 0, PROG_TCP = 1, PROG_UDP = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} tcp_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} udp_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

struct l4_ports {
	__be16 source;
	__be16 dest;
};

static __always_inline void count_stage(__u32 stage)
{
	__u64 *hits = bpf_map_lookup_elem(&stage_hits, &stage);

	if (hits)
		*hits += 1;
}

SEC("xdp")
int pipeline_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	count_stage(STAGE_ENTRY);
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &prog_array, PROG_IPV4);
	/* ARP, IPv6, everything else, and a failed tail call: not filtered here */
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
	/* non-first fragments carry no L4 header */
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;

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

/* Destination port of the L4 header after an IPv4 header with options, or -1
 * when the packet is too short. */
static __always_inline int l4_dest_port(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct l4_ports *ports;

	if ((void *)(ip + 1) > data_end)
		return -1;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return -1;
	return bpf_ntohs(ports->dest);
}

SEC("xdp")
int tcp_stage(struct xdp_md *ctx)
{
	int port;
	__u16 key;

	count_stage(STAGE_TCP);
	port = l4_dest_port((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	if (port < 0)
		return XDP_DROP;
	key = port;
	return bpf_map_lookup_elem(&tcp_deny, &key) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int udp_stage(struct xdp_md *ctx)
{
	int port;
	__u16 key;

	count_stage(STAGE_UDP);
	port = l4_dest_port((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	if (port < 0)
		return XDP_DROP;
	key = port;
	return bpf_map_lookup_elem(&udp_deny, &key) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
