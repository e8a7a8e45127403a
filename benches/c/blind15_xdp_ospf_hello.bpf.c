// SPDX-License-Identifier: GPL-2.0
// blind15_xdp_ospf_hello.bpf.c — C twin of blind15_xdp_ospf_hello.ks: OSPFv2 header sanity
// filter with an area allow-list and Hello parameter checks against a config block.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_OSPF 89
#define OSPF_HELLO 1
#define OSPF_HDR_LEN 24
#define OSPF_HELLO_MIN_LEN 44

enum drop_reason {
	R_TRUNCATED = 0, R_BAD_IP = 1, R_BAD_VERSION = 2, R_BAD_TYPE = 3,
	R_BAD_LENGTH = 4, R_UNKNOWN_AREA = 5, R_HELLO_MISMATCH = 6,
};

struct ospf_hdr {
	__u8 version;
	__u8 type;
	__be16 length;
	__be32 router_id;
	__be32 area_id;
	__be16 checksum;
	__be16 autype;
	__u8 auth[8];
};

struct ospf_hello_body {
	__be32 network_mask;
	__be16 hello_interval;
	__u8 options;
	__u8 priority;
	__be32 dead_interval;
	__be32 dr;
	__be32 bdr;
};

struct ospf_config {
	__u16 hello_interval;
	__u32 dead_interval;
	__u32 network_mask;
	bool drop_mismatched;
};

struct ospf_config ospf SEC(".data.ospf") = {
	.hello_interval = 10,
	.dead_interval = 40,
	.network_mask = 0xFFFFFF00,
	.drop_mismatched = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} areas SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} type_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

__u64 ospf_packets = 0;
__u64 hellos = 0;
__u64 mask_mismatches = 0;
__u64 interval_mismatches = 0;
__u64 dead_mismatches = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int reject(__u32 reason)
{
	array_inc(&drops, reason);
	return XDP_DROP;
}

SEC("xdp")
int ospf_hello(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_OSPF)
		return XDP_PASS;
	__sync_fetch_and_add(&ospf_packets, 1);

	__u32 ihl = ip->ihl;
	if (ihl < 5)
		return reject(R_BAD_IP);
	__u32 hlen = ihl * 4;
	struct ospf_hdr *oh = data + sizeof(*eth) + hlen;
	if ((void *)(oh + 1) > data_end)
		return reject(R_TRUNCATED);
	if (oh->version != 2)
		return reject(R_BAD_VERSION);
	__u8 kind = oh->type;
	if (kind == 0 || kind > 5)
		return reject(R_BAD_TYPE);
	__u32 plen = bpf_ntohs(oh->length);
	if (plen < OSPF_HDR_LEN || hlen + plen > bpf_ntohs(ip->tot_len))
		return reject(R_BAD_LENGTH);

	__u32 area = oh->area_id;
	__u64 *pkts = bpf_map_lookup_elem(&areas, &area);
	if (!pkts)
		return reject(R_UNKNOWN_AREA);
	__sync_fetch_and_add(pkts, 1);
	array_inc(&type_counts, kind);
	if (kind != OSPF_HELLO)
		return XDP_PASS;

	__sync_fetch_and_add(&hellos, 1);
	if (plen < OSPF_HELLO_MIN_LEN)
		return reject(R_BAD_LENGTH);
	struct ospf_hello_body *hello = (void *)(oh + 1);
	if ((void *)(hello + 1) > data_end)
		return reject(R_TRUNCATED);

	bool mismatch = false;
	if (bpf_ntohl(hello->network_mask) != ospf.network_mask) {
		__sync_fetch_and_add(&mask_mismatches, 1);
		mismatch = true;
	}
	if (bpf_ntohs(hello->hello_interval) != ospf.hello_interval) {
		__sync_fetch_and_add(&interval_mismatches, 1);
		mismatch = true;
	}
	if (bpf_ntohl(hello->dead_interval) != ospf.dead_interval) {
		__sync_fetch_and_add(&dead_mismatches, 1);
		mismatch = true;
	}
	if (mismatch && ospf.drop_mismatched)
		return reject(R_HELLO_MISMATCH);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
