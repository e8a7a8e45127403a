// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_flow_table.ks: an IPv4 TCP/UDP flow table in a
 * hash keyed by the 5-tuple, with packet/byte counts and the TCP flags of the first packet; FIN
 * or RST removes the flow. IP options are skipped. A cut-short or invalid IPv4 header is counted
 * as malformed and dropped, a later fragment is counted and passed. The .ks `throw`/`catch`
 * becomes transport_offset() returning a negative reason; its deferred packet count is an
 * atomic add on entry (it runs on every exit). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET 0x1FFF
#define TCP_FIN 0x01
#define TCP_RST 0x04

/* the byte of a TCP header that holds FIN..CWR */
#define tcp_flag_byte(th) (((__u8 *)(th))[13])

enum { TRUNCATED = 1, BAD_HEADER = 2, LATER_FRAGMENT = 3, MALFORMED_MAX };

/* 16 bytes, 3 of them tail padding (zeroed: the struct is a hash key) */
struct FlowKey {
	__u32 saddr;		/* network byte order */
	__u32 daddr;
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 proto;
};

/* 24 bytes, 7 of them tail padding */
struct FlowStats {
	__u64 packets;
	__u64 bytes;
	__u8 first_seen_flags;	/* TCP flags of the flow's first packet (0 for UDP) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct FlowKey);
	__type(value, struct FlowStats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MALFORMED_MAX);
	__type(key, __u32);
	__type(value, __u64);
} malformed SEC(".maps");

__u64 packets_seen = 0;
__u64 flows_closed = 0;

/* Offset of the transport header past the IPv4 header and its options, or -reason. */
static __always_inline long transport_offset(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > data_end)
		return -TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return -BAD_HEADER;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return -LATER_FRAGMENT;
	return sizeof(struct ethhdr) + ip->ihl * 4;
}

static __always_inline int reject(__u32 reason, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&malformed, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
	return verdict;
}

SEC("xdp")
int flow_table(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct FlowKey key;
	struct FlowStats *f;
	__u8 flags = 0;
	long l4;

	__sync_fetch_and_add(&packets_seen, 1);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	l4 = transport_offset(data, data_end);
	if (l4 < 0) {
		if (l4 == -LATER_FRAGMENT)
			return reject(LATER_FRAGMENT, XDP_PASS);
		return reject(-l4, XDP_DROP);
	}

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.proto = ip->protocol;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4;

		if ((void *)(tcp + 1) > data_end)
			return reject(TRUNCATED, XDP_DROP);
		key.sport = bpf_ntohs(tcp->source);
		key.dport = bpf_ntohs(tcp->dest);
		flags = tcp_flag_byte(tcp);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = data + l4;

		if ((void *)(udp + 1) > data_end)
			return reject(TRUNCATED, XDP_DROP);
		key.sport = bpf_ntohs(udp->source);
		key.dport = bpf_ntohs(udp->dest);
	} else {
		return XDP_PASS;
	}

	if (flags & (TCP_FIN | TCP_RST)) {
		if (!bpf_map_delete_elem(&flows, &key))
			__sync_fetch_and_add(&flows_closed, 1);
		return XDP_PASS;
	}

	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		f->packets += 1;
		f->bytes += data_end - data;
	} else {
		struct FlowStats fresh;

		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.packets = 1;
		fresh.bytes = data_end - data;
		fresh.first_seen_flags = flags;
		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
