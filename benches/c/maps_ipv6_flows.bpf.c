// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_ipv6_flows.ks: IPv6 flow accounting on
 * ingress, packets and bytes per (saddr, daddr, ports, next header) in two hash maps. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD

#define TC_ACT_OK 0

/* 40 bytes, 3 of them tail padding (zeroed: the struct is a hash key) */
struct Flow6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 nexthdr;
};

/* the first four bytes of a TCP or UDP header */
struct L4Ports {
	__u16 source;
	__u16 dest;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct Flow6);
	__type(value, __u64);
} flow_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct Flow6);
	__type(value, __u64);
} flow_bytes SEC(".maps");

__u64 non_ipv6 = 0;

/* map[key] += n: atomic add to an existing entry, else insert n. If another CPU
 * inserted the entry in between, add to that one. */
static __always_inline void add(void *map, struct Flow6 *key, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, key);

	if (!val) {
		if (!bpf_map_update_elem(map, key, &n, BPF_NOEXIST))
			return;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return;
	}
	__sync_fetch_and_add(val, n);
}

SEC("tcx/ingress")
int ipv6_flows(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct L4Ports *ports = (void *)(ip6 + 1);
	struct Flow6 key;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
		__sync_fetch_and_add(&non_ipv6, 1);
		return TC_ACT_OK;
	}
	if ((void *)(ip6 + 1) > data_end)
		return TC_ACT_OK;

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip6->saddr;
	key.daddr = ip6->daddr;
	key.nexthdr = ip6->nexthdr;
	if ((ip6->nexthdr == IPPROTO_TCP || ip6->nexthdr == IPPROTO_UDP) &&
	    (void *)(ports + 1) <= data_end) {
		key.sport = bpf_ntohs(ports->source);
		key.dport = bpf_ntohs(ports->dest);
	}
	add(&flow_packets, &key, 1);
	add(&flow_bytes, &key, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
