// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_vlan_parse.ks: count frames per
 * 802.1Q/802.1ad VLAN id, drop the configured VLAN, count untagged frames. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_VID_MASK 0x0fff

/* config vlan_policy { blocked_vlan: u16 = 0 } (0 = nothing blocked) */
struct vlan_policy_config {
	__u16 blocked_vlan;
};

struct vlan_policy_config vlan_policy SEC(".data.vlan_policy") = {
	.blocked_vlan = 0,
};

/* key: VLAN id; value: packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u64);
} vlan_packets SEC(".maps");

/* .bss, in declaration order */
__u64 untagged_packets = 0;
__u64 tagged_ipv4 = 0;
__u64 blocked_packets = 0;

SEC("xdp")
int vlan_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan = (void *)(eth + 1);
	__u64 one = 1, *cnt;
	__u16 vid;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q) && eth->h_proto != bpf_htons(ETH_P_8021AD)) {
		__sync_fetch_and_add(&untagged_packets, 1);
		return XDP_PASS;
	}
	/* tag control information + inner EtherType */
	if ((void *)(vlan + 1) > data_end)
		return XDP_DROP;

	/* vlan_packets[vid] += 1, inserting the entry when missing */
	vid = bpf_ntohs(vlan->h_vlan_TCI) & VLAN_VID_MASK;
	cnt = bpf_map_lookup_elem(&vlan_packets, &vid);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&vlan_packets, &vid, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&vlan_packets, &vid);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}

	if (vlan_policy.blocked_vlan && vid == vlan_policy.blocked_vlan) {
		__sync_fetch_and_add(&blocked_packets, 1);
		return XDP_DROP;
	}

	if (vlan->h_vlan_encapsulated_proto == bpf_htons(ETH_P_IP))
		__sync_fetch_and_add(&tagged_ipv4, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
