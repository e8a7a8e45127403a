// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_port_rewrite.ks: rewrites the destination port of IPv4
 * TCP/UDP packets found in `rewrites`, fixes the L4 checksum incrementally (RFC 1624), swaps
 * the MAC addresses and bounces the frame with XDP_TX. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u16);
} rewrites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} rewrite_hits SEC(".maps");

__u64 rewritten_total = 0;

static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32)new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __always_inline void count_hit(__u16 port)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&rewrite_hits, &port);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&rewrite_hits, &port, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&rewrite_hits, &port);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int port_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	unsigned char mac[ETH_ALEN];
	__u16 orig, *to, new_port;
	__u32 hlen;
	void *l4;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return XDP_PASS;
	l4 = (void *)ip + hlen;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		orig = bpf_ntohs(tcp->dest);
		to = bpf_map_lookup_elem(&rewrites, &orig);
		if (!to)
			return XDP_PASS;
		new_port = bpf_htons(*to);
		tcp->check = csum_replace16(tcp->check, tcp->dest, new_port);
		tcp->dest = new_port;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		orig = bpf_ntohs(udp->dest);
		to = bpf_map_lookup_elem(&rewrites, &orig);
		if (!to)
			return XDP_PASS;
		new_port = bpf_htons(*to);
		if (udp->check) {
			__u16 c = csum_replace16(udp->check, udp->dest, new_port);

			udp->check = c ? c : 0xffff;
		}
		udp->dest = new_port;
	} else {
		return XDP_PASS;
	}
	count_hit(orig);

	__sync_fetch_and_add(&rewritten_total, 1);
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
