// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_tc_load_bytes.ks: an ingress classifier that
 * copies headers out of the skb with bpf_skb_load_bytes, maps IPv4 TCP/UDP destination ports
 * to a traffic class, sets skb->mark = mark_base | class and counts packets/bytes per class. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define MAX_CLASS 7

/* config classify { mark_base: u32 = 0x100, drop_fragments: bool = false } */
struct classify_config {
	__u32 mark_base;
	bool drop_fragments;
};

struct classify_config classify SEC(".data.classify") = {
	.mark_base = 0x100,
	.drop_fragments = false,
};

/* destination port (host order) -> class */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} port_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} class_bytes SEC(".maps");

__u64 fragments_dropped = 0;

struct l4_ports {
	__be16 source;
	__be16 dest;
};

static __always_inline void count(void *map, __u32 class, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &class);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("tcx/ingress")
int classify_ingress(struct __sk_buff *skb)
{
	struct l4_ports ports;
	struct ethhdr eth;
	struct iphdr ip;
	__u32 *cls, class;
	__u16 dport;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return TC_ACT_OK;
	if (eth.h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, sizeof(eth), &ip, sizeof(ip)) < 0)
		return TC_ACT_OK;
	if (ip.version != 4 || ip.ihl < 5)
		return TC_ACT_OK;

	/* MF set or a non-zero offset: a fragment, which has no usable L4 header */
	if (ip.frag_off & bpf_htons(0x3FFF)) {
		if (classify.drop_fragments) {
			__sync_fetch_and_add(&fragments_dropped, 1);
			return TC_ACT_SHOT;
		}
		return TC_ACT_OK;
	}
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return TC_ACT_OK;

	if (bpf_skb_load_bytes(skb, sizeof(eth) + ip.ihl * 4, &ports, sizeof(ports)) < 0)
		return TC_ACT_OK;

	dport = bpf_ntohs(ports.dest);
	cls = bpf_map_lookup_elem(&port_class, &dport);
	class = cls ? *cls : 0;
	if (class > MAX_CLASS)
		class = 0;

	count(&class_packets, class, 1);
	count(&class_bytes, class, skb->len);
	if (class)
		skb->mark = classify.mark_base | class;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
