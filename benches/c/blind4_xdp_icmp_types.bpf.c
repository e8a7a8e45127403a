// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_icmp_types.ks: counts IPv4 ICMP per type and per class,
 * sums IP bytes per source address, and (when enabled) drops echo requests to the protected
 * address. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ICMP_ECHO 8
#define TYPE_SLOTS 20

#define CLASS_INFO 0
#define CLASS_ERROR 1
#define CLASS_OTHER 2

struct icmp_guard_config {
	bool block_echo;
	__u32 protected_addr;
};

struct icmp_guard_config icmp_guard SEC(".data.icmp_guard") = {
	.block_echo = false,
	.protected_addr = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 20);
	__type(key, __u32);
	__type(value, __u64);
} type_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} class_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} src_bytes SEC(".maps");

__u64 dropped_total = 0;
__u64 icmp_total = 0;
__u64 malformed = 0;
__u64 later_fragments = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_add(void *map, __u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(map, &key, &n, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("xdp")
int icmp_types(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	unsigned char *icmp;
	__u32 slot, class;
	__u8 type;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	if (ip->frag_off & bpf_htons(0x1fff)) {
		__sync_fetch_and_add(&later_fragments, 1);
		return XDP_PASS;
	}
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 8) > data_end) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&icmp_total, 1);

	type = icmp[0];
	slot = type < TYPE_SLOTS ? type : TYPE_SLOTS - 1;
	array_inc(&type_counts, slot);

	switch (type) {
	case 0: case 8: case 13: case 14:
		class = CLASS_INFO;
		break;
	case 3: case 4: case 5: case 11: case 12:
		class = CLASS_ERROR;
		break;
	default:
		class = CLASS_OTHER;
		break;
	}
	array_inc(&class_counts, class);

	hash_add(&src_bytes, bpf_ntohl(ip->saddr), bpf_ntohs(ip->tot_len));

	if (type == ICMP_ECHO) {
		if (icmp_guard.block_echo && bpf_ntohl(ip->daddr) == icmp_guard.protected_addr) {
			__sync_fetch_and_add(&dropped_total, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
