// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_ip_blocklist.ks: drop IPv4 packets
 * whose source address (host byte order) is in the blocklist, counting the drops
 * per source and in total. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* key: source address (host byte order); value: reason code */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} blocklist SEC(".maps");

/* key: source address (host byte order); value: packets dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* .bss, in declaration order */
__u64 total_drops = 0;
__u64 ipv4_seen = 0;

SEC("xdp")
int ip_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 one = 1, *cnt;
	__u32 src;

	/* Ethernet header + IPv4 header */
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__sync_fetch_and_add(&ipv4_seen, 1);

	src = bpf_ntohl(ip->saddr);
	if (!bpf_map_lookup_elem(&blocklist, &src))
		return XDP_PASS;

	/* drops[src] += 1: add to the entry, or create it; if another CPU created it
	 * in between, add to that one */
	cnt = bpf_map_lookup_elem(&drops, &src);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&drops, &src, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&drops, &src);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	__sync_fetch_and_add(&total_drops, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
