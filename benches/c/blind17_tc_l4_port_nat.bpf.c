// SPDX-License-Identifier: GPL-2.0
/* Ingress destination-port NAT at TC (hand-written twin of blind17_tc_l4_port_nat.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define TC_ACT_OK	0

enum {
	R_NOT_IPV4,
	R_MALFORMED,
	R_FRAGMENT,
	R_OTHER_PROTO,
	R_NO_RULE,
	R_TCP_NAT,
	R_UDP_NAT,
	R_UDP_NAT_NOCSUM,
	R_MAX,
};

struct nat_key {
	__u16 dport;	/* host byte order */
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct nat_key);
	__type(value, __u16);	/* new destination port, host byte order */
} nat_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} nat_reasons SEC(".maps");

static __always_inline int count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&nat_reasons, &reason);

	if (c)
		*c += 1;
	return TC_ACT_OK;
}

/* RFC 1624 eqn. 3 on 16-bit words as they lie in the packet. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old_val, __u16 new_val)
{
	__u32 sum = (__u16)~check + (__u16)~old_val + new_val;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("tcx/ingress")
int blind17_tc_l4_port_nat(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct nat_key key = {};
	__u16 *to_port, old_port, new_port;
	__u32 l4_off;

	if ((void *)(eth + 1) > data_end)
		return count(R_MALFORMED);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(R_NOT_IPV4);
	if ((void *)(ip + 1) > data_end)
		return count(R_MALFORMED);
	if (ip->ihl < 5)
		return count(R_MALFORMED);
	if (ip->frag_off & bpf_htons(0x3fff))
		return count(R_FRAGMENT);

	l4_off = sizeof(*eth) + ip->ihl * 4;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4_off;

		if ((void *)(tcp + 1) > data_end)
			return count(R_MALFORMED);
		key.dport = bpf_ntohs(tcp->dest);
		key.proto = IPPROTO_TCP;
		to_port = bpf_map_lookup_elem(&nat_rules, &key);
		if (!to_port)
			return count(R_NO_RULE);
		old_port = tcp->dest;
		new_port = bpf_htons(*to_port);
		bpf_l4_csum_replace(ctx, l4_off + offsetof(struct tcphdr, check), old_port, new_port, sizeof(new_port));
		bpf_skb_store_bytes(ctx, l4_off + offsetof(struct tcphdr, dest), &new_port, sizeof(new_port), 0);
		return count(R_TCP_NAT);
	}

	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = data + l4_off;
		__u16 check;

		if ((void *)(udp + 1) > data_end)
			return count(R_MALFORMED);
		key.dport = bpf_ntohs(udp->dest);
		key.proto = IPPROTO_UDP;
		to_port = bpf_map_lookup_elem(&nat_rules, &key);
		if (!to_port)
			return count(R_NO_RULE);
		old_port = udp->dest;
		new_port = bpf_htons(*to_port);
		udp->dest = new_port;
		if (udp->check == 0)
			return count(R_UDP_NAT_NOCSUM);
		check = csum_replace16(udp->check, old_port, new_port);
		udp->check = check ? check : 0xffff;
		return count(R_UDP_NAT);
	}

	return count(R_OTHER_PROTO);
}

char LICENSE[] SEC("license") = "GPL";
