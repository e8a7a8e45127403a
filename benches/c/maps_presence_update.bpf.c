// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_presence_update.ks: per-flow packet and
 * byte accounting for IPv4 TCP/UDP. A known flow is updated in place, a new one is
 * inserted and counted in new_flows. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* 16 bytes, 3 of them tail padding (zeroed: the struct is a hash key) */
struct FlowKey {
	__u32 saddr;		/* network byte order */
	__u32 daddr;
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 proto;
};

struct FlowStats {
	__u64 packets;
	__u64 bytes;
};

/* the first four bytes of a TCP or UDP header */
struct L4Ports {
	__u16 source;
	__u16 dest;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct FlowKey);
	__type(value, struct FlowStats);
} flows SEC(".maps");

__u64 new_flows = 0;

SEC("xdp")
int flow_account(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct FlowStats *st;
	struct L4Ports *ports;
	struct FlowKey key;
	__u64 len;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return XDP_PASS;

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = bpf_ntohs(ports->source);
	key.dport = bpf_ntohs(ports->dest);
	key.proto = ip->protocol;
	len = data_end - data;

	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {
		st->packets += 1;
		st->bytes += len;
	} else {
		struct FlowStats fresh = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
		__sync_fetch_and_add(&new_flows, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
