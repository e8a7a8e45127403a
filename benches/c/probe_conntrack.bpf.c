// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_conntrack.ks: a tiny TCP connection tracker.
 * A pure SYN opens a flow (New), the handshake's ACK establishes it, FIN/RST close it (RST also
 * deletes it); replies match the reverse tuple; segments of unknown flows are dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* addresses and ports as on the wire; 16 bytes with 3 of padding */
struct FlowKey {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
};

enum ConnState { CT_NEW = 0, CT_ESTABLISHED = 1, CT_CLOSING = 2 };

struct Conn {
	__u32 state;		/* enum ConnState */
	__u32 flags_seen;
	__u64 packets;
};

enum { EV_OPENED = 0, EV_ESTABLISHED = 1, EV_CLOSING = 2, EV_RESET = 3, EV_UNKNOWN = 4, EV_MAX };

/* config tracker { drop_unknown: bool = true } */
struct tracker_config {
	bool drop_unknown;
};

struct tracker_config tracker SEC(".data.tracker") = {
	.drop_unknown = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct FlowKey);
	__type(value, struct Conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ct_events SEC(".maps");

__u64 tcp_malformed = 0;

static __always_inline void event(__u32 ev)
{
	__u64 *v = bpf_map_lookup_elem(&ct_events, &ev);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 next_state(__u32 state, __u8 flags)
{
	if (flags & (TCP_FIN | TCP_RST))
		return CT_CLOSING;
	if (state == CT_NEW && (flags & (TCP_ACK | TCP_SYN)) == TCP_ACK)
		return CT_ESTABLISHED;
	return state;
}

/* advances the flow stored under key; false when there is none */
static __always_inline bool advance(struct FlowKey *key, __u8 flags)
{
	struct Conn *c = bpf_map_lookup_elem(&conns, key);
	__u32 old, next;

	if (!c)
		return false;
	old = c->state;
	next = next_state(old, flags);
	if (old == CT_NEW && next == CT_ESTABLISHED)
		event(EV_ESTABLISHED);
	if (old != CT_CLOSING && next == CT_CLOSING)
		event(EV_CLOSING);
	c->state = next;
	c->flags_seen |= flags;
	c->packets += 1;
	if (flags & TCP_RST) {
		bpf_map_delete_elem(&conns, key);
		event(EV_RESET);
	}
	return true;
}

SEC("xdp")
int conntrack(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct FlowKey key, reply;
	struct tcphdr *tcp;
	__u32 ihl;
	__u8 flags;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	tcp = (void *)ip + ihl;
	if (ihl < sizeof(*ip) || (void *)(tcp + 1) > data_end) {
		__sync_fetch_and_add(&tcp_malformed, 1);
		return XDP_DROP;
	}
	flags = ((__u8 *)tcp)[13];

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	key.proto = IPPROTO_TCP;
	if (advance(&key, flags))
		return XDP_PASS;

	__builtin_memset(&reply, 0, sizeof(reply));
	reply.saddr = ip->daddr;
	reply.daddr = ip->saddr;
	reply.sport = tcp->dest;
	reply.dport = tcp->source;
	reply.proto = IPPROTO_TCP;
	if (advance(&reply, flags))
		return XDP_PASS;

	if ((flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) {
		struct Conn c = { .state = CT_NEW, .flags_seen = flags, .packets = 1 };

		bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
		event(EV_OPENED);
		return XDP_PASS;
	}
	event(EV_UNKNOWN);
	if (tracker.drop_unknown)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
