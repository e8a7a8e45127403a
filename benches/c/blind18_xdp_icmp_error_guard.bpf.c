// SPDX-License-Identifier: GPL-2.0
/* ICMP error guard: drop ICMPv4 errors that quote a flow this host does not have. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define ICMP_DEST_UNREACH	3
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12
#define ICMP_FRAG_NEEDED	4
#define MIN_PMTU		552

enum parse_err {
	PE_OK = 0,
	PE_TRUNCATED = 1,
	PE_NOT_IPV4 = 2,
	PE_BAD_IHL = 3,
	PE_FRAGMENT = 4,
	PE_PROTO = 5,
};

enum guard_stat {
	G_KNOWN = 0,
	G_UNKNOWN_FLOW = 1,
	G_TRUNCATED = 2,
	G_MALFORMED = 3,
	G_OTHER_PROTO = 4,
	G_BAD_MTU = 5,
	G_OUTER_FRAG = 6,
};

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_state {
	__u32 errors;
	__u32 pmtu;
	__u8 last_type;
	__u8 last_code;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} guard_stats SEC(".maps");

__u64 icmp_errors_seen = 0;
__u32 last_unknown_src = 0;

static __always_inline void count(__u32 st)
{
	__u64 *c = bpf_map_lookup_elem(&guard_stats, &st);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* Flow key of the datagram quoted at @inner (the one this host sent). */
static __always_inline int parse_inner(void *inner, void *data_end, struct flow_key *key)
{
	struct iphdr *ip = inner;
	void *l4;

	if ((void *)(ip + 1) > data_end)
		return PE_TRUNCATED;
	if (ip->version != 4)
		return PE_NOT_IPV4;
	if (ip->ihl < 5)
		return PE_BAD_IHL;
	if (bpf_ntohs(ip->frag_off) & 0x1fff)
		return PE_FRAGMENT;
	l4 = inner + ip->ihl * 4;
	if (l4 + 8 > data_end)
		return PE_TRUNCATED;

	switch (ip->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		key->sport = ((__be16 *)l4)[0];
		key->dport = ((__be16 *)l4)[1];
		break;
	case IPPROTO_ICMP:
		/* quoted echo request: the identifier plays the source port */
		key->sport = ((__be16 *)l4)[2];
		key->dport = 0;
		break;
	default:
		return PE_PROTO;
	}
	key->saddr = ip->saddr;
	key->daddr = ip->daddr;
	key->proto = ip->protocol;
	return PE_OK;
}

SEC("xdp")
int blind18_xdp_icmp_error_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct flow_key key = {};
	struct flow_state *st;
	struct icmphdr *icmp;
	__u8 type, code;
	int err;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	type = icmp->type;
	if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED &&
	    type != ICMP_PARAMETERPROB)
		return XDP_PASS;

	__sync_fetch_and_add(&icmp_errors_seen, 1);

	if (bpf_ntohs(ip->frag_off) & 0x1fff) {
		count(G_OUTER_FRAG);
		return XDP_PASS;
	}
	code = icmp->code;

	err = parse_inner(icmp + 1, data_end, &key);
	switch (err) {
	case PE_OK:
		break;
	case PE_TRUNCATED:
		count(G_TRUNCATED);
		return XDP_DROP;
	case PE_PROTO:
		/* SCTP, GRE, ...: no ports to check against */
		count(G_OTHER_PROTO);
		return XDP_PASS;
	default:
		count(G_MALFORMED);
		return XDP_DROP;
	}

	st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		count(G_UNKNOWN_FLOW);
		last_unknown_src = ip->saddr;
		return XDP_DROP;
	}
	if (type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED) {
		__u16 mtu = bpf_ntohs(icmp->un.frag.mtu);

		if (mtu < MIN_PMTU) {
			count(G_BAD_MTU);
			return XDP_DROP;
		}
		st->pmtu = mtu;
	}
	st->errors += 1;
	st->last_type = type;
	st->last_code = code;
	count(G_KNOWN);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
