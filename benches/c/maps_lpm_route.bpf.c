// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_lpm_route.ks: destination-prefix
 * traffic classes on egress from an LPM trie, skb->mark per class, per-class packet
 * and byte counters, blackhole routes dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define NUM_CLASSES 16

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum RouteAction { Forward = 0, Blackhole = 1 };

/* LPM trie key: prefix length, then the address (network byte order) */
struct V4Prefix {
	__u32 prefixlen;
	__u32 addr;
};

struct Route {
	__u32 class_id;
	__u32 action;		/* enum RouteAction */
};

/* config qos { mark_base: u32 = 0x100, default_class: u32 = 0 } */
struct qos_config {
	__u32 mark_base;
	__u32 default_class;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct V4Prefix);
	__type(value, struct Route);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} class_bytes SEC(".maps");

struct qos_config qos SEC(".data.qos") = {
	.mark_base = 0x100,
	.default_class = 0,
};

__u64 blackholed = 0;
__u64 unrouted = 0;

SEC("tcx/egress")
int classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct V4Prefix key;
	struct Route *r;
	__u32 class_id;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	key.prefixlen = 32;
	key.addr = ip->daddr;
	r = bpf_map_lookup_elem(&routes, &key);
	if (r) {
		if (r->action == Blackhole) {
			__sync_fetch_and_add(&blackholed, 1);
			return TC_ACT_SHOT;
		}
		class_id = r->class_id;
	} else {
		__sync_fetch_and_add(&unrouted, 1);
		class_id = qos.default_class;
	}

	cnt = bpf_map_lookup_elem(&class_packets, &class_id);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	cnt = bpf_map_lookup_elem(&class_bytes, &class_id);
	if (cnt)
		__sync_fetch_and_add(cnt, skb->len);
	skb->mark = qos.mark_base + class_id;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
