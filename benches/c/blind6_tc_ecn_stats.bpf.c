// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind6_tc_ecn_stats.ks: counts ingress IPv4/IPv6
 * packets per (DSCP, ECN), CE-marked packets in total and per TCP/UDP destination port, and,
 * when configured, frames of other EtherTypes. Always TC_ACT_OK. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define IP_MF_OFFSET 0x1fff
#define ECN_CE 3

/* config ecn_stats { count_non_ip: bool } */
struct ecn_stats_config {
	bool count_non_ip;
};

struct ecn_stats_config ecn_stats SEC(".data.ecn_stats") = {
	.count_non_ip = false,
};

/* index dscp * 4 + ecn */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} tos_packets SEC(".maps");

/* destination port (host order) -> CE-marked packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} ce_by_port SEC(".maps");

/* .bss, in declaration order */
__u64 non_ip_frames = 0;
__u64 ce_packets = 0;

/* the first four bytes of both TCP and UDP headers */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

SEC("tcx/ingress")
int ecn_stats_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct l4_ports *ports;
	__u32 tclass, proto;
	__u64 one = 1, *cnt;
	__u16 dport;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		if (ip->ihl < 5)
			return TC_ACT_OK;
		tclass = ip->tos;
		proto = ip->protocol;
		/* a fragment other than the first carries no ports */
		if (ip->frag_off & bpf_htons(IP_MF_OFFSET))
			proto = 0;
		ports = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		/* version(4) | traffic class(8) | flow label(20) */
		tclass = (bpf_ntohl(*(__be32 *)ip6) >> 20) & 0xff;
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
	} else {
		if (ecn_stats.count_non_ip)
			__sync_fetch_and_add(&non_ip_frames, 1);
		return TC_ACT_OK;
	}

	/* dscp * 4 + ecn is the whole class byte */
	cnt = bpf_map_lookup_elem(&tos_packets, &tclass);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	if ((tclass & 0x03) != ECN_CE)
		return TC_ACT_OK;
	__sync_fetch_and_add(&ce_packets, 1);
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && (void *)(ports + 1) <= data_end) {
		/* ce_by_port[dport] += 1, inserting the entry when missing */
		dport = bpf_ntohs(ports->dest);
		cnt = bpf_map_lookup_elem(&ce_by_port, &dport);
		if (cnt) {
			__sync_fetch_and_add(cnt, 1);
		} else if (bpf_map_update_elem(&ce_by_port, &dport, &one, BPF_NOEXIST)) {
			cnt = bpf_map_lookup_elem(&ce_by_port, &dport);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
		}
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
