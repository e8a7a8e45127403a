// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of the XDP program in examples/port_guard_tests.ks: drop IPv4
 * TCP packets to blocked destination ports and count them; drop runts. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* key: TCP destination port (host byte order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} blocked_tcp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

struct l4_ports {
	__be16 source;
	__be16 dest;
};

SEC("xdp")
int port_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct l4_ports *ports;
	__u32 zero = 0;
	__u64 *cnt;
	__u16 dport;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;	/* says IPv4 but has no room for the header */
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return XDP_DROP;

	dport = bpf_ntohs(ports->dest);
	if (!bpf_map_lookup_elem(&blocked_tcp_ports, &dport))
		return XDP_PASS;
	cnt = bpf_map_lookup_elem(&dropped, &zero);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
