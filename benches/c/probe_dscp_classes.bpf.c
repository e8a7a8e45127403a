// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_dscp_classes.ks: egress DSCP marking by
 * destination port with a configured default class, ECN bits kept, IPv4 checksum fixed
 * incrementally (RFC 1624). Malformed IPv4 headers are dropped and counted; every packet is
 * counted in processed_packets. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ECN_MASK 0x03

enum { HDR_OK = 0, NOT_IPV4 = 1, BAD_HEADER = 2, TRUNCATED = 3, HDR_ERROR_MAX };

/* config qos { default_dscp: u8 = 0 } */
struct qos_config {
	__u8 default_dscp;
};

struct qos_config qos SEC(".data.qos") = {
	.default_dscp = 0,
};

/* destination port (host order) -> DSCP 0..63 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} dscp_by_port SEC(".maps");

/* packets sent, per DSCP */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HDR_ERROR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} header_errors SEC(".maps");

/* .bss, in declaration order */
__u64 processed_packets = 0;
__u64 rewritten_packets = 0;

static __always_inline void count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tcx/egress")
int dscp_classes(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *ports;	/* source and dest: same place in TCP */
	__u8 dscp, *d, old_tos, new_tos;
	__u16 old_word, new_word, dport;
	__u32 hdr_len, sum;

	__sync_fetch_and_add(&processed_packets, 1);

	if ((void *)(ip + 1) > data_end) {
		count(&header_errors, TRUNCATED);
		return TC_ACT_SHOT;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;	/* not IPv4: nothing to mark */
	if (ip->version != 4 || ip->ihl < 5) {
		count(&header_errors, BAD_HEADER);
		return TC_ACT_SHOT;
	}
	hdr_len = ip->ihl * 4;
	ports = (void *)ip + hdr_len;
	if ((void *)ports > data_end) {
		count(&header_errors, TRUNCATED);
		return TC_ACT_SHOT;
	}

	dscp = qos.default_dscp;
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    (void *)ports + 4 <= data_end) {
		dport = bpf_ntohs(ports->dest);
		d = bpf_map_lookup_elem(&dscp_by_port, &dport);
		if (d)
			dscp = *d;
	}

	old_tos = ip->tos;
	new_tos = (__u8)(dscp << 2) | (old_tos & ECN_MASK);
	if (new_tos != old_tos) {
		/* RFC 1624: HC' = ~(~HC + ~m + m'), m being the header's first 16-bit word */
		old_word = bpf_ntohs(*(__be16 *)ip);
		new_word = (old_word & 0xff00) | new_tos;
		sum = (__u16)~bpf_ntohs(ip->check) + (__u16)~old_word + new_word;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ip->tos = new_tos;
		ip->check = bpf_htons((__u16)~sum);
		__sync_fetch_and_add(&rewritten_packets, 1);
	}
	count(&class_packets, dscp);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
