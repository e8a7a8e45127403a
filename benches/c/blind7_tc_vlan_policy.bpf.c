// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_tc_vlan_policy.ks: per-VLAN admission policy on tc ingress.
 * The outer 802.1Q/802.1ad tag gives the VLAN (untagged and VID 0: the configured native VLAN);
 * a hash of policies decides: denied VLANs are dropped, admitted frames get the policy's mark
 * and are counted per VLAN in a per-CPU hash, VLANs without a policy pass and are counted per
 * VID. VID 4095 and frames cut inside the tag are dropped. The .ks throwing tag parser becomes
 * frame_vid() returning a negative drop reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VID_MASK 0x0FFF
#define VID_RESERVED 0x0FFF

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum DropReason {
	DeniedVlan = 0,
	ReservedVid = 1,
	ShortTag = 2,
};

struct trunk_config {
	__u16 native_vid;
};

struct trunk_config trunk SEC(".data.trunk") = {
	.native_vid = 1,
};

struct Policy {
	bool allow;
	__u32 mark;
	bool count_bytes;
};

struct VlanStats {
	__u64 packets;
	__u64 bytes;
};

struct vlan_tag {
	__be16 tci;
	__be16 inner_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct Policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct VlanStats);
} vlan_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} unknown_vids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* the frame's VLAN (0..4094), or -1 - the drop reason */
static __always_inline int frame_vid(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct vlan_tag *tag = (void *)(eth + 1);
	__u16 vid;

	if ((void *)(eth + 1) <= data_end &&
	    (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))) {
		if ((void *)(tag + 1) > data_end)
			return -1 - ShortTag;
		vid = bpf_ntohs(tag->tci) & VID_MASK;
		if (vid == VID_RESERVED)
			return -1 - ReservedVid;
		if (vid != 0)
			return vid;
	}
	/* untagged or priority-tagged: the native VLAN */
	return trunk.native_vid;
}

SEC("tcx/ingress")
int vlan_policy(struct __sk_buff *skb)
{
	struct VlanStats *s;
	struct Policy *p;
	__u64 bytes = 0;
	int ret;
	__u16 vid;

	ret = frame_vid(skb);
	if (ret < 0) {
		count(&drops, -1 - ret);
		return TC_ACT_SHOT;
	}
	vid = ret;

	p = bpf_map_lookup_elem(&policies, &vid);
	if (!p) {
		count(&unknown_vids, vid);
		return TC_ACT_OK;
	}
	if (!p->allow) {
		count(&drops, DeniedVlan);
		return TC_ACT_SHOT;
	}
	skb->mark = p->mark;
	if (p->count_bytes)
		bytes = skb->len;

	/* per-CPU slot: no other CPU writes it, plain updates suffice */
	s = bpf_map_lookup_elem(&vlan_stats, &vid);
	if (s) {
		s->packets += 1;
		s->bytes += bytes;
	} else {
		struct VlanStats init = { .packets = 1, .bytes = bytes };

		bpf_map_update_elem(&vlan_stats, &vid, &init, BPF_ANY);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
