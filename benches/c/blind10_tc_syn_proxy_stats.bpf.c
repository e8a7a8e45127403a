// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_tc_syn_proxy_stats.ks: TCP handshake statistics and SYN
 * screening on tc ingress, over IPv4 and IPv6. Segments are classified RST, SYN, SYN-ACK, FIN
 * or other (in that order of tests) and counted per class; SYNs and RSTs are counted per
 * destination port and SYN-ACKs per source port in a per-CPU hash {syns, synacks, rsts}. A SYN
 * with doff < 5 or with an IP length other than its TCP header is shot as malformed; a SYN to
 * a Closed port is shot and counted per source (IPv4 as ::ffff:a.b.c.d) in an LRU hash; every
 * segment to a Watch port gets the configured skb mark. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum TcpClass {
	CLASS_SYN = 0,
	CLASS_SYNACK = 1,
	CLASS_RST = 2,
	CLASS_FIN = 3,
	CLASS_OTHER = 4,
};

enum PortPolicy {
	POLICY_OPEN = 0,
	POLICY_CLOSED = 1,
	POLICY_WATCH = 2,
};

enum {
	SHOT_MALFORMED = 0,
	SHOT_CLOSED = 1,
};

struct syn_proxy_config {
	__u32 watch_mark;
};

struct syn_proxy_config syn_proxy SEC(".data.syn_proxy") = {
	.watch_mark = 0x5a0,
};

struct PortStats {
	__u64 syns;
	__u64 synacks;
	__u64 rsts;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} class_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, struct PortStats);
} port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} port_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_addr);
	__type(value, __u64);
} closed_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} shot SEC(".maps");

__u64 watched_segments = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* closed_hits[src] += 1: atomic add to an existing entry, else insert 1 (and add to the entry
 * another CPU inserted in between) */
static __always_inline void count_source(struct in6_addr *src)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&closed_hits, src);

	if (!v) {
		if (!bpf_map_update_elem(&closed_hits, src, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&closed_hits, src);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

/* per-CPU slot: plain increments */
static __always_inline void bump_port(__u16 port, enum TcpClass class)
{
	struct PortStats *ps = bpf_map_lookup_elem(&port_stats, &port);

	if (!ps) {
		struct PortStats zero = {};

		bpf_map_update_elem(&port_stats, &port, &zero, BPF_ANY);
		ps = bpf_map_lookup_elem(&port_stats, &port);
		if (!ps)
			return;
	}
	if (class == CLASS_SYN)
		ps->syns += 1;
	else if (class == CLASS_SYNACK)
		ps->synacks += 1;
	else
		ps->rsts += 1;
}

SEC("tcx/ingress")
int syn_proxy_stats(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct in6_addr src = {};
	struct tcphdr *tcp;
	__u32 l4_len, hlen, tot, policy = POLICY_OPEN, *pp;
	__u16 dport;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		if (ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return TC_ACT_OK;
		hlen = ip->ihl * 4;
		tot = bpf_ntohs(ip->tot_len);
		if (tot < hlen)
			return TC_ACT_OK;
		tcp = (void *)ip + hlen;
		l4_len = tot - hlen;
		src.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
		src.in6_u.u6_addr32[3] = ip->saddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		if (ip6->nexthdr != IPPROTO_TCP)
			return TC_ACT_OK;
		tcp = (void *)(ip6 + 1);
		l4_len = bpf_ntohs(ip6->payload_len);
		src = ip6->saddr;
	} else {
		return TC_ACT_OK;
	}

	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	dport = bpf_ntohs(tcp->dest);
	pp = bpf_map_lookup_elem(&port_policy, &dport);
	if (pp)
		policy = *pp;

	if (tcp->rst) {
		count(&class_counts, CLASS_RST);
		bump_port(dport, CLASS_RST);
	} else if (tcp->syn && !tcp->ack) {
		__u32 doff_bytes = tcp->doff * 4;

		count(&class_counts, CLASS_SYN);
		if (doff_bytes < sizeof(*tcp) || l4_len != doff_bytes) {
			count(&shot, SHOT_MALFORMED);
			return TC_ACT_SHOT;
		}
		bump_port(dport, CLASS_SYN);
		if (policy == POLICY_CLOSED) {
			count_source(&src);
			count(&shot, SHOT_CLOSED);
			return TC_ACT_SHOT;
		}
	} else if (tcp->syn) {
		count(&class_counts, CLASS_SYNACK);
		bump_port(bpf_ntohs(tcp->source), CLASS_SYNACK);
	} else if (tcp->fin) {
		count(&class_counts, CLASS_FIN);
	} else {
		count(&class_counts, CLASS_OTHER);
	}

	if (policy == POLICY_WATCH) {
		skb->mark = syn_proxy.watch_mark;
		__sync_fetch_and_add(&watched_segments, 1);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
