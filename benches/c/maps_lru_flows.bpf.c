// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_lru_flows.ks: an IPv4 TCP/UDP
 * connection table in an LRU hash keyed by the 5-tuple, with packet/byte counts and
 * the OR of the TCP flags seen; FIN or RST removes the flow. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TCP_FIN 0x01
#define TCP_RST 0x04

/* the byte of a TCP header that holds FIN..CWR */
#define tcp_flag_byte(th) (((__u8 *)(th))[13])

/* 16 bytes, 3 of them tail padding (zeroed: the struct is a hash key) */
struct FiveTuple {
	__u32 saddr;		/* network byte order */
	__u32 daddr;
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 proto;
};

/* 24 bytes, 7 of them tail padding */
struct FlowInfo {
	__u64 packets;
	__u64 bytes;
	__u8 tcp_flags;		/* OR of the flags of every packet of the flow */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct FiveTuple);
	__type(value, struct FlowInfo);
} flows SEC(".maps");

__u64 closed_flows = 0;

SEC("xdp")
int track_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct FiveTuple key;
	struct FlowInfo *f;
	__u8 flags = 0;
	void *l4;
	__u64 len;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.proto = ip->protocol;
	l4 = (void *)ip + ip->ihl * 4;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		key.sport = bpf_ntohs(tcp->source);
		key.dport = bpf_ntohs(tcp->dest);
		flags = tcp_flag_byte(tcp);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		key.sport = bpf_ntohs(udp->source);
		key.dport = bpf_ntohs(udp->dest);
	} else {
		return XDP_PASS;
	}

	if (flags & (TCP_FIN | TCP_RST)) {
		if (!bpf_map_delete_elem(&flows, &key))
			__sync_fetch_and_add(&closed_flows, 1);
		return XDP_PASS;
	}

	len = data_end - data;
	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		f->packets += 1;
		f->bytes += len;
		f->tcp_flags |= flags;
	} else {
		struct FlowInfo fresh;

		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.packets = 1;
		fresh.bytes = len;
		fresh.tcp_flags = flags;
		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
