// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_port_counter.ks: count ingress
 * IPv4 TCP/UDP packets per destination port; every packet passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0

/* key: destination port (host byte order); value: packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u16);
	__type(value, __u64);
} port_packets SEC(".maps");

/* .bss, in declaration order */
__u64 tcp_packets = 0;
__u64 udp_packets = 0;
__u64 other_packets = 0;

/* the first four bytes of both TCP and UDP headers */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

SEC("tcx/ingress")
int port_counter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct l4_ports *ports;
	__u64 one = 1, *cnt;
	__u16 dport;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&other_packets, 1);
		return TC_ACT_OK;
	}

	if (ip->protocol == IPPROTO_TCP) {
		__sync_fetch_and_add(&tcp_packets, 1);
	} else if (ip->protocol == IPPROTO_UDP) {
		__sync_fetch_and_add(&udp_packets, 1);
	} else {
		__sync_fetch_and_add(&other_packets, 1);
		return TC_ACT_OK;
	}

	if (ip->ihl < 5)
		return TC_ACT_OK;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return TC_ACT_OK;

	/* port_packets[dport] += 1, inserting the entry when missing */
	dport = bpf_ntohs(ports->dest);
	cnt = bpf_map_lookup_elem(&port_packets, &dport);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&port_packets, &dport, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&port_packets, &dport);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
