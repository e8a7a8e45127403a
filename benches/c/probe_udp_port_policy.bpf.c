// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_udp_port_policy.ks: on ingress, drop UDP
 * datagrams to a blocked port or to the reserved range 1024..2047 and report each drop as a
 * PortEvent record in a ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum verdict {
	VERDICT_ALLOWED = 0,
	VERDICT_LISTED = 1,
	VERDICT_RESERVED_RANGE = 2,
	VERDICT_MAX,
};

/* 16 bytes, no padding; addresses in network byte order, ports in host order */
struct PortEvent {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
	__u16 udp_len;
	__u8 reason;
	__u8 ttl;
};

/* config policy { block_range: bool = true } */
struct policy_config {
	bool block_range;
};

struct policy_config policy SEC(".data.policy") = {
	.block_range = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} port_verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} port_events SEC(".maps");

__u64 events_lost = 0;

/* the reason a datagram to port is refused, or VERDICT_ALLOWED */
static __always_inline __u32 check_port(__u16 port)
{
	if (bpf_map_lookup_elem(&blocked_ports, &port))
		return VERDICT_LISTED;
	if (port >= 1024 && port <= 2047 && policy.block_range)
		return VERDICT_RESERVED_RANGE;
	return VERDICT_ALLOWED;
}

SEC("tcx/ingress")
int udp_port_policy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct PortEvent *e;
	__u32 reason;
	__u16 dport;
	__u64 *cnt;

	/* Ethernet + IPv4 without options + UDP header */
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;

	dport = bpf_ntohs(udp->dest);
	reason = check_port(dport);
	cnt = bpf_map_lookup_elem(&port_verdicts, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (reason == VERDICT_ALLOWED)
		return TC_ACT_OK;

	e = bpf_ringbuf_reserve(&port_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return TC_ACT_SHOT;
	}
	e->saddr = ip->saddr;
	e->daddr = ip->daddr;
	e->sport = bpf_ntohs(udp->source);
	e->dport = dport;
	e->udp_len = bpf_ntohs(udp->len);
	e->reason = reason;
	e->ttl = ip->ttl;
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
