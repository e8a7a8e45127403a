// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_tail_chain_tc.ks: tc ingress accounting in three
 * stages chained by tail calls; parse -> policy passes a per-CPU scratch entry, policy ->
 * account passes the class in skb->mark. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define CLASS_MASK 0x0F
#define BLACKHOLE 15

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_ACCOUNT = 0, PROG_POLICY = 1 };

/* what the parse stage hands to the policy stage (8 bytes) */
struct FlowMeta {
	__be32 saddr;
	__u16 dport;
	__u8 proto;
	__u8 ttl;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct FlowMeta);
} flow_scratch SEC(".maps");

/* destination port -> class 1..15 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u32);
} port_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} class_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

__u64 blackholed = 0;

SEC("tcx/ingress")
int tc_parse(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct FlowMeta *meta;
	struct udphdr *ports;	/* source and dest: same place in TCP */
	__u32 zero = 0;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	skb->mark = 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) {
		bpf_tail_call(skb, &prog_array, PROG_ACCOUNT);
		return TC_ACT_OK;
	}
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)ports + 4 > data_end)
		return TC_ACT_OK;

	meta = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (meta) {
		meta->saddr = ip->saddr;
		meta->dport = bpf_ntohs(ports->dest);
		meta->proto = ip->protocol;
		meta->ttl = ip->ttl;
	}
	bpf_tail_call(skb, &prog_array, PROG_POLICY);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tc_policy(struct __sk_buff *skb)
{
	struct FlowMeta *meta;
	__u32 zero = 0, class = 0, *policy;
	__u16 dport = 0;
	__u8 ttl = 0;

	meta = bpf_map_lookup_elem(&flow_scratch, &zero);
	if (meta) {
		dport = meta->dport;
		ttl = meta->ttl;
	}
	policy = bpf_map_lookup_elem(&port_policy, &dport);
	if (policy)
		class = *policy & CLASS_MASK;
	/* TTL 1 on arrival: traceroute probes, never blackholed */
	if (class == BLACKHOLE && ttl <= 1)
		class = 0;
	skb->mark = class;
	bpf_tail_call(skb, &prog_array, PROG_ACCOUNT);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tc_account(struct __sk_buff *skb)
{
	__u32 class = skb->mark & CLASS_MASK;
	__u64 *bytes = bpf_map_lookup_elem(&class_bytes, &class);

	if (bytes)
		*bytes += skb->len;
	if (class == BLACKHOLE) {
		__sync_fetch_and_add(&blackholed, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
