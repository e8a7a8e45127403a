// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_xdp_vlan_rewrite.ks: rewrites the VLAN ID of 802.1Q-tagged
 * frames found in `vlan_xlate` in place (PCP/DEI kept), counts translations per original
 * VLAN, and sends translated frames back out (XDP_TX) when the config says so. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define VLAN_VID_MASK 0x0fff
#define VLAN_PRIO_MASK 0xf000

struct xlate_config {
	bool reflect;
};

struct xlate_config xlate SEC(".data.xlate") = {
	.reflect = false,
};

struct VlanTag {
	__be16 tci;
	__be16 inner_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u16);
} vlan_xlate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u64);
} translations SEC(".maps");

__u64 untagged_frames = 0;
__u64 untranslated_frames = 0;
__u64 truncated_tags = 0;

static __always_inline void count_translation(__u16 vid)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&translations, &vid);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&translations, &vid, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&translations, &vid);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int vlan_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct VlanTag *tag = data + sizeof(*eth);
	__u16 tci, vid, *to;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q)) {
		__sync_fetch_and_add(&untagged_frames, 1);
		return XDP_PASS;
	}
	if ((void *)(tag + 1) > data_end) {
		__sync_fetch_and_add(&truncated_tags, 1);
		return XDP_PASS;
	}
	tci = bpf_ntohs(tag->tci);
	vid = tci & VLAN_VID_MASK;

	to = bpf_map_lookup_elem(&vlan_xlate, &vid);
	if (!to) {
		__sync_fetch_and_add(&untranslated_frames, 1);
		return XDP_PASS;
	}
	tag->tci = bpf_htons((tci & VLAN_PRIO_MASK) | (*to & VLAN_VID_MASK));
	count_translation(vid);
	if (xlate.reflect)
		return XDP_TX;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
