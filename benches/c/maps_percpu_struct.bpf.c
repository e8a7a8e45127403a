// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_percpu_struct.ks: ingress statistics per
 * network family, one record of counters per family in a pinned per-CPU array. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58

#define TC_ACT_OK 0

#define FAM_IPV4 0
#define FAM_IPV6 1
#define FAM_OTHER 2

struct FamilyStats {
	__u64 packets;
	__u64 bytes;
	__u64 tcp;
	__u64 udp;
	__u64 icmp;
	__u64 other;
	__u64 max_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct FamilyStats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} family_stats SEC(".maps");

SEC("tcx/ingress")
int ingress_stats(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct FamilyStats *s;
	__u32 family = FAM_OTHER;
	__u64 len;
	__u8 l4 = 0;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		family = FAM_IPV4;
		l4 = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		family = FAM_IPV6;
		l4 = ip6->nexthdr;
	}

	s = bpf_map_lookup_elem(&family_stats, &family);
	if (!s)
		return TC_ACT_OK;
	/* per-CPU slot: no other CPU writes it, plain updates suffice */
	len = skb->len;
	s->packets += 1;
	s->bytes += len;
	switch (l4) {
	case IPPROTO_TCP:
		s->tcp += 1;
		break;
	case IPPROTO_UDP:
		s->udp += 1;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		s->icmp += 1;
		break;
	default:
		s->other += 1;
	}
	if (len > s->max_len)
		s->max_len = len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
