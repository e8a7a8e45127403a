// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_dscp_marker.ks: egress DSCP marking by
 * destination port, keeping the ECN bits, with bpf_l3_csum_replace fixing the IPv4 checksum. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define IP_CSUM_OFF (sizeof(struct ethhdr) + offsetof(struct iphdr, check))
#define ECN_MASK 0x03

/* config marker { trust_existing: bool = false } */
struct marker_config {
	bool trust_existing;
};

struct marker_config marker SEC(".data.marker") = {
	.trust_existing = false,
};

/* destination port -> DSCP 0..63 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} dscp_by_port SEC(".maps");

/* packets rewritten, per new DSCP */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} remarked SEC(".maps");

SEC("tcx/egress")
int dscp_marker(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *ports;	/* source and dest: same place in TCP */
	__u8 *dscp, old_tos, new_tos;
	__u32 idx;
	__u64 *count;
	__u16 dport;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)ports + 4 > data_end)
		return TC_ACT_OK;

	dport = bpf_ntohs(ports->dest);
	dscp = bpf_map_lookup_elem(&dscp_by_port, &dport);
	if (!dscp)
		return TC_ACT_OK;

	old_tos = ip->tos;
	if ((old_tos >> 2) && marker.trust_existing)
		return TC_ACT_OK;
	new_tos = (*dscp << 2) | (old_tos & ECN_MASK);
	if (new_tos == old_tos)
		return TC_ACT_OK;

	ip->tos = new_tos;
	/* TOS is the low byte of the header's first 16-bit word */
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons(old_tos), bpf_htons(new_tos), 2);
	idx = new_tos >> 2;
	count = bpf_map_lookup_elem(&remarked, &idx);
	if (count)
		__sync_fetch_and_add(count, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
