// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_vxlan_filter.ks: admit VXLAN (UDP 4789) packets
 * only for VNIs in allowed_vni, counting bytes per VNI; the VXLAN header is copied out with
 * bpf_skb_load_bytes. Non-VXLAN traffic passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define VXLAN_PORT 4789
#define VXLAN_FLAG_I 0x08
#define VXLAN_OFF (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

enum { DROP_SHORT = 0, DROP_NO_VNI = 1, DROP_UNKNOWN_VNI = 2, DROP_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} allowed_vni SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} vni_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vxlan_drops SEC(".maps");

__u64 vxlan_admitted = 0;

static __always_inline int drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&vxlan_drops, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_SHOT;
}

SEC("tcx/ingress")
int vxlan_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct vxlanhdr vx;
	__u64 len, *bytes;
	__u32 vni;

	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (*(__u8 *)ip != 0x45 || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (udp->dest != bpf_htons(VXLAN_PORT))
		return TC_ACT_OK;

	if (bpf_skb_load_bytes(skb, VXLAN_OFF, &vx, sizeof(vx)) < 0)
		return drop(DROP_SHORT);
	if (!(*(__u8 *)&vx.vx_flags & VXLAN_FLAG_I))
		return drop(DROP_NO_VNI);
	vni = bpf_ntohl(vx.vx_vni) >> 8;
	if (!bpf_map_lookup_elem(&allowed_vni, &vni))
		return drop(DROP_UNKNOWN_VNI);

	/* vni_bytes[vni] += len, creating the entry when missing */
	len = skb->len;
	bytes = bpf_map_lookup_elem(&vni_bytes, &vni);
	if (bytes) {
		__sync_fetch_and_add(bytes, len);
	} else if (bpf_map_update_elem(&vni_bytes, &vni, &len, BPF_NOEXIST)) {
		bytes = bpf_map_lookup_elem(&vni_bytes, &vni);
		if (bytes)
			__sync_fetch_and_add(bytes, len);
	}
	__sync_fetch_and_add(&vxlan_admitted, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
