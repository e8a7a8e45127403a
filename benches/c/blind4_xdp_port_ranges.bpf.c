// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_port_ranges.ks: filters IPv4 TCP/UDP (optionally behind
 * one 802.1Q tag) by destination port against a deny range and an allow range, lets known
 * services below 1024 through, and counts every class, VLAN ids, fragments and truncated
 * headers. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100

#define CLS_ALLOW 0
#define CLS_DENY 2
#define CLS_SERVICE 4
#define CLS_UNLISTED 5
#define CLS_OTHER_PROTO 6
#define CLS_TAGGED 7

struct ranges_config {
	__u16 allow_lo;
	__u16 allow_hi;
	__u16 deny_lo;
	__u16 deny_hi;
	bool drop_unlisted;
};

struct ranges_config ranges SEC(".data.ranges") = {
	.allow_lo = 1024,
	.allow_hi = 49151,
	.deny_lo = 6000,
	.deny_hi = 6063,
	.drop_unlisted = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} port_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} vlan_packets SEC(".maps");

__u64 fragments = 0;
__u64 truncated = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, __u32 key)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(map, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int truncated_drop(void)
{
	__sync_fetch_and_add(&truncated, 1);
	return XDP_DROP;
}

SEC("xdp")
int port_ranges(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *l4;
	__u32 udp;
	__u16 proto, frag, dport;

	if ((void *)(eth + 1) > data_end)
		return truncated_drop();
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return truncated_drop();
		hash_inc(&vlan_packets, bpf_ntohs(vh->h_vlan_TCI) & 0x0fff);
		array_inc(&port_class, CLS_TAGGED);
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return truncated_drop();
	if (ip->ihl < 5)
		return truncated_drop();

	switch (ip->protocol) {
	case IPPROTO_TCP:
		udp = 0;
		break;
	case IPPROTO_UDP:
		udp = 1;
		break;
	default:
		array_inc(&port_class, CLS_OTHER_PROTO);
		return XDP_PASS;
	}

	frag = bpf_ntohs(ip->frag_off) & 0x3fff;
	if (frag) {
		__sync_fetch_and_add(&fragments, 1);
		if (frag & 0x1fff)
			return XDP_PASS;
	}

	l4 = (void *)ip + ip->ihl * 4;
	if ((void *)(l4 + 1) > data_end)
		return truncated_drop();
	if (!udp && (void *)l4 + sizeof(struct tcphdr) > data_end)
		return truncated_drop();
	dport = bpf_ntohs(l4->dest);

	if (dport >= ranges.deny_lo && dport <= ranges.deny_hi) {
		array_inc(&port_class, CLS_DENY + udp);
		return XDP_DROP;
	}
	if (dport >= ranges.allow_lo && dport <= ranges.allow_hi) {
		array_inc(&port_class, CLS_ALLOW + udp);
		return XDP_PASS;
	}

	switch (dport) {
	case 22: case 53: case 80: case 123: case 443:
		array_inc(&port_class, CLS_SERVICE);
		return XDP_PASS;
	}
	array_inc(&port_class, CLS_UNLISTED);
	if (ranges.drop_unlisted)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
