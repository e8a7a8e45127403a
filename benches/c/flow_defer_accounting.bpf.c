// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_defer_accounting.ks: per-class packet and byte
 * accounting on tc ingress. The .ks program defers the accounting to every exit; here the
 * classifier returns the verdict and the class, and the program accounts once. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum traffic_class {
	CLASS_RUNT = 0,
	CLASS_NON_IP = 1,
	CLASS_OTHER = 2,
	CLASS_ICMP = 3,
	CLASS_TCP = 4,
	CLASS_UDP = 5,
	CLASS_BLOCKED = 6,
	CLASS_MAX,
};

struct ingress_config {
	__u16 blocked_port;
};

struct ingress_config ingress SEC(".data.ingress") = {
	.blocked_port = 23,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} class_bytes SEC(".maps");

__u64 ipv4_packets = 0;

static __always_inline int classify(struct __sk_buff *skb, __u32 *class)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *ports;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		*class = CLASS_NON_IP;
		return TC_ACT_OK;
	}
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;	/* a runt claiming to be IPv4 */
	__sync_fetch_and_add(&ipv4_packets, 1);
	*class = CLASS_OTHER;
	if (ip->protocol == IPPROTO_ICMP) {
		*class = CLASS_ICMP;
		return TC_ACT_OK;
	}
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > data_end) {
		*class = CLASS_RUNT;
		return TC_ACT_SHOT;
	}
	if (bpf_ntohs(ports[1]) == ingress.blocked_port) {
		*class = CLASS_BLOCKED;
		return TC_ACT_SHOT;
	}
	*class = ip->protocol == IPPROTO_TCP ? CLASS_TCP : CLASS_UDP;
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int ingress_account(struct __sk_buff *skb)
{
	__u32 class = CLASS_RUNT;
	int verdict = classify(skb, &class);
	__u64 *v;

	v = bpf_map_lookup_elem(&class_packets, &class);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&class_bytes, &class);
	if (v)
		__sync_fetch_and_add(v, skb->len);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
