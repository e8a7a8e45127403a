// SPDX-License-Identifier: GPL-2.0
/* C twin of blind16_tc_vlan_translate.ks: TC ingress 802.1Q/802.1ad VID translation,
 * rewriting the outer TCI in place (DEI kept) or dropping per rule. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define VLAN_VID_MASK	0x0fff
#define VLAN_DEI_MASK	0x1000
#define KEEP_PCP	0xff

struct vlan_eth_hdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 tpid;
	__be16 tci;
	__be16 inner_proto;
};

struct vlan_rule {
	__u16 new_vid;
	__u8 new_pcp;
	__u8 drop;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct vlan_rule);
} vlan_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} vlan_translated SEC(".maps");

__u64 untagged = 0;
__u64 runts = 0;
__u64 unknown_vid = 0;
__u64 dropped = 0;

struct xlate_config {
	bool drop_unknown;
	bool accept_qinq;
} xlate SEC(".data.xlate") = {
	.drop_unknown = false,
	.accept_qinq = true,
};

SEC("tcx/ingress")
int vlan_translate(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct vlan_eth_hdr *vh = data;
	struct vlan_rule *rule;
	__u16 tci, vid, pcp;
	__u32 idx;
	__u64 *cnt;

	if (data + sizeof(struct ethhdr) > data_end) {
		__sync_fetch_and_add(&runts, 1);
		return TC_ACT_OK;
	}
	if (vh->tpid != bpf_htons(ETH_P_8021Q) &&
	    !(vh->tpid == bpf_htons(ETH_P_8021AD) && xlate.accept_qinq)) {
		__sync_fetch_and_add(&untagged, 1);
		return TC_ACT_OK;
	}
	if ((void *)(vh + 1) > data_end) {	/* 18-byte 802.1Q header */
		__sync_fetch_and_add(&runts, 1);
		return TC_ACT_OK;
	}
	tci = bpf_ntohs(vh->tci);
	vid = tci & VLAN_VID_MASK;
	rule = bpf_map_lookup_elem(&vlan_rules, &vid);
	if (!rule) {
		__sync_fetch_and_add(&unknown_vid, 1);
		return xlate.drop_unknown ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (rule->drop) {
		__sync_fetch_and_add(&dropped, 1);
		return TC_ACT_SHOT;
	}
	pcp = rule->new_pcp <= 7 ? rule->new_pcp : tci >> 13;
	vh->tci = bpf_htons((pcp << 13) | (tci & VLAN_DEI_MASK) |
			    (rule->new_vid & VLAN_VID_MASK));
	idx = vid;
	cnt = bpf_map_lookup_elem(&vlan_translated, &idx);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
