// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_port_knock.ks: TCP port knocking. A per-source stage
 * (0..3) in an LRU hash advances on SYNs to the configured knock ports in order; a SYN to a
 * knock port out of order removes the entry. Knock SYNs are dropped; SYNs to the protected port
 * pass only at the final stage. Every outcome is counted in an array map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define FINAL_STAGE 3

enum Outcome {
	KNOCK_ADVANCED,
	KNOCK_RESET,
	ACCESS_GRANTED,
	ACCESS_DENIED,
	NOT_INSPECTED,
	MALFORMED,
};

struct knock_config {
	__u16 port1;
	__u16 port2;
	__u16 port3;
	__u16 protected_port;
};

struct knock_config knock SEC(".data.knock") = {
	.port1 = 7000,
	.port2 = 8000,
	.port3 = 9000,
	.protected_port = 22,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} knock_stage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

static __always_inline int record(__u32 o, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&outcomes, &o);

	if (v)
		__sync_fetch_and_add(v, 1);
	return verdict;
}

SEC("xdp")
int port_knock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *tcp;
	__u32 src, ihl;
	__u16 dport;
	__u8 stage = 0, *st;

	if ((void *)(eth + 1) > data_end)
		return record(MALFORMED, XDP_DROP);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return record(NOT_INSPECTED, XDP_PASS);
	if ((void *)(ip + 1) > data_end)
		return record(MALFORMED, XDP_DROP);
	ihl = ip->ihl;
	if (ip->version != 4 || ihl < 5)
		return record(MALFORMED, XDP_DROP);
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
		return record(NOT_INSPECTED, XDP_PASS);
	tcp = (void *)ip + ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return record(MALFORMED, XDP_DROP);
	if (!tcp->syn || tcp->ack)
		return record(NOT_INSPECTED, XDP_PASS);

	src = ip->saddr;
	dport = bpf_ntohs(tcp->dest);
	st = bpf_map_lookup_elem(&knock_stage, &src);
	if (st)
		stage = *st;

	if (dport == knock.protected_port) {
		if (stage == FINAL_STAGE)
			return record(ACCESS_GRANTED, XDP_PASS);
		return record(ACCESS_DENIED, XDP_DROP);
	}
	if (dport == knock.port1 || dport == knock.port2 || dport == knock.port3) {
		if (stage < FINAL_STAGE &&
		    dport == (stage == 0 ? knock.port1 : stage == 1 ? knock.port2 : knock.port3)) {
			__u8 next = stage + 1;

			bpf_map_update_elem(&knock_stage, &src, &next, BPF_ANY);
			return record(KNOCK_ADVANCED, XDP_DROP);
		}
		bpf_map_delete_elem(&knock_stage, &src);
		return record(KNOCK_RESET, XDP_DROP);
	}
	return record(NOT_INSPECTED, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
