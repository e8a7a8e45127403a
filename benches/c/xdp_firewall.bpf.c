// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/xdp_firewall.ks: drop IPv4 packets whose source
 * address is in the pinned blocklist, counting the drops per source. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* key: IPv4 source address (network byte order); value: packets dropped from it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10000);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist SEC(".maps");

/* config fw { log_drops: bool = false } */
struct fw_config {
	bool log_drops;
};

struct fw_config fw SEC(".data.fw") = {
	.log_drops = false,
};

SEC("xdp")
int firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u64 *drops;
	__u32 src;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	/* Ethernet + minimal IPv4 header: a shorter "IPv4" frame is garbage. */
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;

	src = ip->saddr;
	drops = bpf_map_lookup_elem(&blocklist, &src);
	if (!drops)
		return XDP_PASS;
	__sync_fetch_and_add(drops, 1);

	if (fw.log_drops)
		bpf_printk("xdp_firewall: drop from %x\n", bpf_ntohl(src));
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
