// SPDX-License-Identifier: GPL-2.0
// blind14_xdp_tail_syn_stats.bpf.c — C twin of blind14_xdp_tail_syn_stats.ks: per-port TCP
// handshake statistics and a SYN port blocklist, in XDP stages chained by tail calls.
// prog_array slots: 0 = tcp_stage, 1 = udp_stage.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100

#define TCP_FIN		0x01
#define TCP_SYN		0x02
#define TCP_RST		0x04
#define TCP_ACK		0x10

#define STAGE_TCP	0
#define STAGE_UDP	1

struct tcp_counts {
	__u64 syn;
	__u64 synack;
	__u64 rst;
	__u64 fin;
};

struct udp_counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct tcp_counts);
} tcp_port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct udp_counts);
} udp_port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} syn_blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

__u64 entry_packets = 0;
__u64 malformed = 0;
__u64 fragments = 0;
__u64 tcp_packets = 0;
__u64 tcp_short = 0;
__u64 syn_blocked = 0;
__u64 udp_packets = 0;
__u64 udp_short = 0;

/* Offset of the IPv4 header (14, or 18 behind one 802.1Q tag); 0 if not IPv4 or cut short. */
static __always_inline __u32 ipv4_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u16 proto;
	__u32 off = sizeof(*eth);

	if ((void *)(eth + 1) > data_end)
		return 0;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return 0;
		proto = vlan->h_vlan_encapsulated_proto;
		off += sizeof(*vlan);
	}
	return proto == bpf_htons(ETH_P_IP) ? off : 0;
}

static __always_inline __u32 l4_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = ipv4_offset(ctx);
	struct iphdr *ip;

	if (!off)
		return 0;
	ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return 0;
	return off + ip->ihl * 4;
}

SEC("xdp")
int tcp_stage(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct tcp_counts *st;
	__u32 l4, word_idx;
	__u64 *word;
	__u16 port;
	__u8 flags;

	__sync_fetch_and_add(&tcp_packets, 1);
	l4 = l4_offset(ctx);
	if (!l4)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + l4 + sizeof(struct tcphdr) > data_end) {
		__sync_fetch_and_add(&tcp_short, 1);
		return XDP_DROP;
	}
	flags = ((__u8 *)data)[l4 + 13];
	if (!(flags & (TCP_SYN | TCP_RST | TCP_FIN)))
		return XDP_PASS;
	port = bpf_ntohs(((struct tcphdr *)(data + l4))->dest);

	st = bpf_map_lookup_elem(&tcp_port_stats, &port);
	if (!st) {
		struct tcp_counts zero = {};

		bpf_map_update_elem(&tcp_port_stats, &port, &zero, BPF_ANY);
		st = bpf_map_lookup_elem(&tcp_port_stats, &port);
	}
	if (flags & TCP_RST) {
		if (st)
			__sync_fetch_and_add(&st->rst, 1);
	} else if (flags & TCP_SYN) {
		if (flags & TCP_ACK) {
			if (st)
				__sync_fetch_and_add(&st->synack, 1);
		} else {
			if (st)
				__sync_fetch_and_add(&st->syn, 1);
			word_idx = port >> 6;
			word = bpf_map_lookup_elem(&syn_blocklist, &word_idx);
			if (word && (*word >> (port & 63)) & 1) {
				__sync_fetch_and_add(&syn_blocked, 1);
				return XDP_DROP;
			}
		}
	} else if (st) {
		__sync_fetch_and_add(&st->fin, 1);
	}
	return XDP_PASS;
}

SEC("xdp")
int udp_stage(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct udp_counts *st;
	struct udphdr *udp;
	__u16 port;
	__u64 len;
	__u32 l4;

	__sync_fetch_and_add(&udp_packets, 1);
	l4 = l4_offset(ctx);
	if (!l4)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&udp_short, 1);
		return XDP_DROP;
	}
	port = bpf_ntohs(udp->dest);
	len = bpf_ntohs(udp->len);
	st = bpf_map_lookup_elem(&udp_port_stats, &port);
	if (st) {
		st->packets += 1;
		st->bytes += len;
	} else {
		struct udp_counts init = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&udp_port_stats, &port, &init, BPF_ANY);
	}
	return XDP_PASS;
}

SEC("xdp")
int syn_stats_entry(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct iphdr *ip;
	__u32 off, ihl;

	__sync_fetch_and_add(&entry_packets, 1);
	off = ipv4_offset(ctx);
	if (!off)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip = data + off;
	if ((void *)(ip + 1) > data_end)
		goto bad;
	ihl = ip->ihl;
	if (ip->version != 4 || ihl < 5 || data + off + ihl * 4 > data_end)
		goto bad;
	if (ip->frag_off & bpf_htons(0x1FFF)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}
	switch (ip->protocol) {
	case IPPROTO_TCP:
		bpf_tail_call(ctx, &prog_array, STAGE_TCP);
		break;
	case IPPROTO_UDP:
		bpf_tail_call(ctx, &prog_array, STAGE_UDP);
		break;
	}
	return XDP_PASS;
bad:
	__sync_fetch_and_add(&malformed, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
