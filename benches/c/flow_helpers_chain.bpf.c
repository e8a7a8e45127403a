// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_helpers_chain.ks: per-class packet policy built
 * from small parse/classify functions called in sequence. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum traffic_class {
	CLASS_BULK = 0,
	CLASS_WEB = 1,
	CLASS_DNS = 2,
	CLASS_MAIL = 3,
	CLASS_CONTROL = 4,
	CLASS_UNPARSED = 5,
	CLASS_MAX,
};

enum action { ACTION_PASS = 0, ACTION_DROP = 1 };

struct ipv4_info {
	__u8 proto;	/* 0: no usable IPv4 header */
	__u16 l4_off;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} class_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

/* The EtherType in host order, or 0 when there is no Ethernet header. */
static __always_inline __u16 parse_eth(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	return bpf_ntohs(eth->h_proto);
}

static __always_inline struct ipv4_info parse_ipv4(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct ipv4_info info = {};

	if ((void *)(ip + 1) > data_end)
		return info;
	if (ip->version != 4 || ip->ihl < 5)
		return info;
	info.proto = ip->protocol;
	info.l4_off = sizeof(struct ethhdr) + ip->ihl * 4;
	return info;
}

/* Destination port of TCP or UDP at off, or 0. */
static __always_inline __u16 l4_dport(void *data, void *data_end, __u8 proto, __u16 off)
{
	__u16 *ports = data + off;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	if ((void *)(ports + 2) > data_end)
		return 0;
	return bpf_ntohs(ports[1]);
}

static __always_inline __u32 classify(__u8 proto, __u16 dport)
{
	if (proto == IPPROTO_ICMP)
		return CLASS_CONTROL;
	if (dport == 80 || dport == 443 || dport == 8080)
		return CLASS_WEB;
	if (dport == 53)
		return CLASS_DNS;
	if (dport == 25 || dport == 587 || dport == 993)
		return CLASS_MAIL;
	if (dport == 22 || dport == 179)
		return CLASS_CONTROL;
	return CLASS_BULK;
}

static __always_inline int verdict(__u32 class)
{
	__u64 *cnt = bpf_map_lookup_elem(&class_packets, &class);
	__u32 *action;

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	action = bpf_map_lookup_elem(&class_policy, &class);
	return action && *action == ACTION_DROP ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int class_chain(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv4_info ip;
	__u16 dport;

	if (parse_eth(data, data_end) != ETH_P_IP)
		return XDP_PASS;
	ip = parse_ipv4(data, data_end);
	if (!ip.proto)
		return verdict(CLASS_UNPARSED);
	dport = l4_dport(data, data_end, ip.proto, ip.l4_off);
	return verdict(classify(ip.proto, dport));
}

char LICENSE[] SEC("license") = "GPL";
