// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_tc_conn_state.ks: TCP connection states of outgoing IPv4
 * segments in an LRU hash keyed by the 5-tuple. A SYN opens an entry (SynSent; SYN-ACK:
 * SynRecv), the first plain ACK establishes it, FIN moves it to FinWait, RST deletes it.
 * Untracked packets are counted per reason; malformed headers are dropped. The .ks throwing
 * parsers become functions returning the reason code. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define U_NOT_IPV4 1
#define U_NOT_TCP 2
#define U_MALFORMED 3
#define U_FRAGMENT 4
#define U_NO_CONN 5

enum TcpState { Closed = 0, SynSent = 1, SynRecv = 2, Established = 3, FinWait = 4 };

/* addresses and ports as on the wire */
struct ConnKey {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct Conn {
	__u8 state;	/* enum TcpState */
	__u64 packets;
	__u64 bytes;
	__u8 first_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ConnKey);
	__type(value, struct Conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} untracked SEC(".maps");

__u64 opened = 0;
__u64 established = 0;
__u64 resets = 0;

static __always_inline __u8 next_state(__u8 state, __u8 flags)
{
	if (flags & TCP_RST)
		return Closed;
	if (flags & TCP_SYN) {
		if (!(flags & TCP_ACK))
			return SynSent;
		return state == SynSent ? SynRecv : state;
	}
	if (flags & TCP_FIN)
		return FinWait;
	if (state == SynSent || state == SynRecv)
		return Established;
	return state;
}

SEC("tcx/egress")
int conn_state(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	struct ConnKey key;
	struct Conn *c;
	__u32 reason, hlen;
	__u64 len, *cnt;
	__u8 flags, old, next;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		reason = U_NOT_IPV4;
		goto skip;
	}
	if ((void *)(ip + 1) > data_end) {
		reason = U_MALFORMED;
		goto skip;
	}
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip)) {
		reason = U_MALFORMED;
		goto skip;
	}
	if (ip->protocol != IPPROTO_TCP) {
		reason = U_NOT_TCP;
		goto skip;
	}
	if (ip->frag_off & bpf_htons(0x1fff)) {
		reason = U_FRAGMENT;
		goto skip;
	}
	tcp = (void *)ip + hlen;
	if ((void *)(tcp + 1) > data_end || tcp->doff < 5) {
		reason = U_MALFORMED;
		goto skip;
	}

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	key.proto = IPPROTO_TCP;
	flags = ((__u8 *)tcp)[13];
	len = skb->len;

	c = bpf_map_lookup_elem(&conns, &key);
	if (c) {
		old = c->state;
		next = next_state(old, flags);
		if (next == Closed) {
			bpf_map_delete_elem(&conns, &key);
			__sync_fetch_and_add(&resets, 1);
			return TC_ACT_OK;
		}
		if (next == Established && old != Established)
			__sync_fetch_and_add(&established, 1);
		c->state = next;
		c->packets += 1;
		c->bytes += len;
		return TC_ACT_OK;
	}

	/* only a SYN opens a connection */
	if ((flags & (TCP_SYN | TCP_RST)) != TCP_SYN) {
		reason = U_NO_CONN;
		goto skip;
	}
	{
		struct Conn init;

		__builtin_memset(&init, 0, sizeof(init));
		init.state = (flags & TCP_ACK) ? SynRecv : SynSent;
		init.packets = 1;
		init.bytes = len;
		init.first_flags = flags;
		bpf_map_update_elem(&conns, &key, &init, BPF_ANY);
	}
	__sync_fetch_and_add(&opened, 1);
	return TC_ACT_OK;

skip:
	cnt = bpf_map_lookup_elem(&untracked, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return reason == U_MALFORMED ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
