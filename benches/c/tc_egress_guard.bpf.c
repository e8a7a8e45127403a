// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/tc_egress_guard.ks: egress policy on IPv4 TCP/UDP
 * destination ports (drop, or set skb->mark from the config). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* enum PortAction in the .ks source */
enum port_action { PORT_ALLOW = 0, PORT_BLOCK = 1, PORT_MARK = 2 };

/* key: destination port (host byte order); value: enum port_action */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} port_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} shot_packets SEC(".maps");

/* config egress { mark_value: u32 = 0x10 } */
struct egress_config {
	__u32 mark_value;
};

struct egress_config egress SEC(".data.egress") = {
	.mark_value = 0x10,
};

/* L4 source/destination ports: the first four bytes of both TCP and UDP headers */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

SEC("tcx/egress")
int egress_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct l4_ports *ports;
	__u32 zero = 0, *action;
	__u64 *shots;
	__u16 dport;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	/* the L4 header follows the IPv4 header, whose length is IHL * 4 bytes */
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return TC_ACT_OK;

	dport = bpf_ntohs(ports->dest);
	action = bpf_map_lookup_elem(&port_policy, &dport);
	if (!action)
		return TC_ACT_OK;

	switch (*action) {
	case PORT_BLOCK:
		shots = bpf_map_lookup_elem(&shot_packets, &zero);
		if (shots)
			*shots += 1;
		return TC_ACT_SHOT;
	case PORT_MARK:
		skb->mark = egress.mark_value;
		return TC_ACT_OK;
	default:
		return TC_ACT_OK;
	}
}

char LICENSE[] SEC("license") = "GPL";
