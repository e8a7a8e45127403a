// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_tc_flow_mark.ks: tc ingress policy marking.
 * IPv4 TCP/UDP flows (optionally behind one 802.1Q tag) are looked up by (daddr, dport, proto);
 * the policy (or the configured default) sets skb->mark, skb->priority for Prioritize, or
 * drops. Packets are counted per action (per-CPU) and bytes per mark. Ethernet/VLAN and the
 * ports are read in place, the IPv4 header with bpf_skb_load_bytes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum action { ACT_PASS = 0, ACT_PRIORITIZE = 1, ACT_DROP = 2, ACT_MAX };

/* daddr in network byte order, dport in host byte order */
struct flow_key {
	__u32 daddr;
	__u16 dport;
	__u8 proto;
};

struct policy {
	__u32 mark;
	__u32 priority;
	__u32 action;
};

/* config flow_defaults { mark: u32 = 0x100, priority: u32 = 0, drop_unmatched: bool = false } */
struct flow_defaults_config {
	__u32 mark;
	__u32 priority;
	bool drop_unmatched;
};

struct flow_defaults_config flow_defaults SEC(".data.flow_defaults") = {
	.mark = 0x100,
	.priority = 0,
	.drop_unmatched = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} action_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} mark_bytes SEC(".maps");

__u64 unmatched = 0;
__u64 malformed = 0;

struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* The policy of a flow: its entry in policies, else the configured default. */
static __always_inline void policy_for(const struct flow_key *key, struct policy *out)
{
	struct policy *p;

	p = bpf_map_lookup_elem(&policies, key);
	if (p) {
		*out = *p;
		return;
	}
	__sync_fetch_and_add(&unmatched, 1);
	out->mark = flow_defaults.mark;
	out->priority = flow_defaults.priority;
	out->action = flow_defaults.drop_unmatched ? ACT_DROP : ACT_PASS;
}

static __always_inline void add_bytes(__u32 mark, __u64 len)
{
	__u64 *v = bpf_map_lookup_elem(&mark_bytes, &mark);

	if (v) {
		__sync_fetch_and_add(v, len);
		return;
	}
	if (bpf_map_update_elem(&mark_bytes, &mark, &len, BPF_NOEXIST)) {
		/* another CPU created it first */
		v = bpf_map_lookup_elem(&mark_bytes, &mark);
		if (v)
			__sync_fetch_and_add(v, len);
	}
}

SEC("tcx/ingress")
int flow_mark(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct l4_ports *ports;
	struct flow_key key;
	struct policy pol;
	struct iphdr ip;
	__u32 l3_off = sizeof(*eth), l4_off, action;
	__u64 *cnt;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return TC_ACT_OK;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		l3_off += sizeof(*vlan);
	}
	if (proto != ETH_P_IP)
		return TC_ACT_OK;

	if (bpf_skb_load_bytes(skb, l3_off, &ip, sizeof(ip)) < 0)
		return TC_ACT_OK;
	if (ip.ihl < 5) {
		__sync_fetch_and_add(&malformed, 1);
		return TC_ACT_OK;
	}
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	l4_off = l3_off + ip.ihl * 4;
	ports = data + l4_off;
	if ((void *)(ports + 1) > data_end) {
		__sync_fetch_and_add(&malformed, 1);
		return TC_ACT_OK;
	}

	__builtin_memset(&key, 0, sizeof(key));
	key.daddr = ip.daddr;
	key.dport = bpf_ntohs(ports->dest);
	key.proto = ip.protocol;
	policy_for(&key, &pol);

	action = pol.action;
	cnt = bpf_map_lookup_elem(&action_packets, &action);
	if (cnt)
		*cnt += 1;
	if (pol.action == ACT_DROP)
		return TC_ACT_SHOT;
	if (pol.action == ACT_PRIORITIZE)
		skb->priority = pol.priority;
	skb->mark = pol.mark;
	add_bytes(pol.mark, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
