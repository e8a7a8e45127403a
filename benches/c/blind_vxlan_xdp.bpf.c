// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_vxlan_xdp.ks: VLAN-aware XDP VXLAN tenant
 * policy. ARP and IPv6 are counted and pass; IPv4/UDP to 4789 with the I flag is VXLAN, whose
 * VNI decides through tenant_policy (1 admit, 2 deny, absent: unknown, dropped). Admitted
 * packets are counted per VNI and the inner Ethernet header's FNV-1a hash is kept. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VXLAN_PORT 4789
#define VXLAN_FLAG_I 0x08

enum { VERDICT_ADMIT = 1, VERDICT_DENY = 2 };
enum { C_ARP, C_IPV6, C_OTHER, C_SHORT, C_NO_VNI, C_UNKNOWN, C_DENIED, C_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} tenant_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tenant_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

__u32 last_inner_hash = 0;

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 inner_hash(void *data, void *data_end, __u32 off)
{
	__u32 h = 2166136261u;

	for (int i = 0; i < 14; i++) {
		__u8 *p = data + off + i;

		if ((void *)(p + 1) > data_end)
			break;
		h = (h ^ *p) * 16777619u;
	}
	return h;
}

SEC("xdp")
int vxlan_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth), vni, key;
	__be16 proto;
	__u8 *ip, *vx, *verdict;
	__u64 one = 1, *packets;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end) {
			count(C_SHORT);
			return XDP_DROP;
		}
		proto = vlan->h_vlan_encapsulated_proto;
		l3 += sizeof(*vlan);
	}
	switch (proto) {
	case bpf_htons(ETH_P_ARP):
		count(C_ARP);
		return XDP_PASS;
	case bpf_htons(ETH_P_IPV6):
		count(C_IPV6);
		return XDP_PASS;
	case bpf_htons(ETH_P_IP):
		break;
	default:
		count(C_OTHER);
		return XDP_PASS;
	}

	/* IPv4 without options (20), UDP (8), VXLAN (8) */
	ip = data + l3;
	if ((void *)(ip + 36) > data_end) {
		count(C_SHORT);
		return XDP_PASS;
	}
	if (ip[0] != 0x45 || ip[9] != IPPROTO_UDP) {
		count(C_OTHER);
		return XDP_PASS;
	}
	if (((struct udphdr *)(ip + 20))->dest != bpf_htons(VXLAN_PORT)) {
		count(C_OTHER);
		return XDP_PASS;
	}
	vx = ip + 28;
	if (!(vx[0] & VXLAN_FLAG_I)) {
		count(C_NO_VNI);
		return XDP_DROP;
	}
	vni = bpf_ntohl(*(__be32 *)(vx + 4)) >> 8;

	verdict = bpf_map_lookup_elem(&tenant_policy, &vni);
	if (!verdict) {
		count(C_UNKNOWN);
		return XDP_DROP;
	}
	if (*verdict == VERDICT_DENY) {
		count(C_DENIED);
		return XDP_DROP;
	}
	packets = bpf_map_lookup_elem(&tenant_packets, &vni);
	if (packets) {
		__sync_fetch_and_add(packets, 1);
	} else if (bpf_map_update_elem(&tenant_packets, &vni, &one, BPF_NOEXIST)) {
		packets = bpf_map_lookup_elem(&tenant_packets, &vni);
		if (packets)
			__sync_fetch_and_add(packets, 1);
	}
	last_inner_hash = inner_hash(data, data_end, l3 + 36);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
