// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_qinq_stats.ks: per (outer VID, inner VID)
 * packet and byte counters in a per-CPU hash for up to two VLAN tags (802.1ad and/or 802.1Q);
 * frames with a third tag, or cut inside a tag, are dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_VID_MASK 0x0fff
#define MAX_TAGS 2

struct VlanKey {
	__u16 outer_vid;
	__u16 inner_vid;
};

struct VlanCounters {
	__u64 packets;
	__u64 bytes;
};

/* config qinq { count_untagged: bool = true } */
struct qinq_config {
	bool count_untagged;
};

struct qinq_config qinq SEC(".data.qinq") = {
	.count_untagged = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct VlanKey);
	__type(value, struct VlanCounters);
} vlan_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_TAGS + 1);
	__type(key, __u32);
	__type(value, __u64);
} frames_by_depth SEC(".maps");

/* .bss, in declaration order */
__u64 service_tagged = 0;
__u64 too_many_tags = 0;
__u64 truncated_tags = 0;

static __always_inline bool is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

SEC("xdp")
int qinq_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *tag = (void *)(eth + 1);
	/* before key, so they do not share a stack slot: key's stores would make the verifier
	 * forget the bound of tags */
	__u32 tags;
	struct VlanKey key = {};
	struct VlanCounters *c;
	__u64 len, *depth;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;

	for (tags = 0; tags <= MAX_TAGS; tags++) {
		if (!is_vlan(proto))
			break;
		if (tags == MAX_TAGS) {
			__sync_fetch_and_add(&too_many_tags, 1);
			return XDP_DROP;
		}
		if ((void *)(tag + 1) > data_end) {
			__sync_fetch_and_add(&truncated_tags, 1);
			return XDP_DROP;
		}
		if (tags == 0) {
			key.outer_vid = bpf_ntohs(tag->h_vlan_TCI) & VLAN_VID_MASK;
			if (proto == bpf_htons(ETH_P_8021AD))
				__sync_fetch_and_add(&service_tagged, 1);
		} else {
			key.inner_vid = bpf_ntohs(tag->h_vlan_TCI) & VLAN_VID_MASK;
		}
		proto = tag->h_vlan_encapsulated_proto;
		tag++;
	}

	/* per-CPU slots: plain adds */
	depth = bpf_map_lookup_elem(&frames_by_depth, &tags);
	if (depth)
		*depth += 1;
	if (tags == 0 && !qinq.count_untagged)
		return XDP_PASS;

	len = data_end - data;
	c = bpf_map_lookup_elem(&vlan_stats, &key);
	if (c) {
		c->packets += 1;
		c->bytes += len;
	} else {
		struct VlanCounters init = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&vlan_stats, &key, &init, BPF_ANY);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
