// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind11_xdp_route_guard.ks: checks BGP (GTSM TTL),
 * VRRP (TTL 255, 224.0.0.18, version 2/3 advertisement), OSPF (version 2, known type, TTL 1 to
 * AllSPFRouters/AllDRouters, unicast only when allowed) and RIP (command 1/2, v2 to 224.0.0.9,
 * v1 broadcast when allowed) over IPv4 behind an optional 802.1Q tag; counts accepted packets
 * and violations per protocol, violations per source, and drops violations of the protocols
 * whose enforce bit is set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define IPPROTO_OSPF 89
#define IPPROTO_VRRP 112
#define BGP_PORT 179
#define RIP_PORT 520

#define ALL_SPF_ROUTERS 0xE0000005
#define ALL_D_ROUTERS 0xE0000006
#define RIP2_ROUTERS 0xE0000009
#define VRRP_GROUP 0xE0000012
#define BROADCAST 0xFFFFFFFF

enum {
	SLOT_BGP = 0,
	SLOT_VRRP = 1,
	SLOT_OSPF = 2,
	SLOT_RIP = 3,
};

/* config route_policy { bgp_min_ttl: u8, ospf_unicast: bool, allow_ripv1: bool, enforce: u8 } */
struct route_policy_config {
	__u8 bgp_min_ttl;
	bool ospf_unicast;
	bool allow_ripv1;
	__u8 enforce;
};

struct route_policy_config route_policy SEC(".data.route_policy") = {
	.bgp_min_ttl = 255,
	.ospf_unicast = false,
	.allow_ripv1 = false,
	.enforce = 0x0F,
};

/* slot * 2 + (0 accepted, 1 violation) -> packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

/* source (host order) -> violations */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} violators SEC(".maps");

/* .bss, in declaration order */
__u64 routing_packets = 0;
__u64 tagged = 0;
__u64 truncated = 0;
__u64 fragments = 0;
__u64 monitored = 0;

static __always_inline bool rip_ok(__u32 dst, __u8 command, __u8 version)
{
	if (command != 1 && command != 2)
		return false;
	if (version == 2)
		return dst == RIP2_ROUTERS;
	if (version == 1)
		return route_policy.allow_ripv1 && dst == BROADCAST;
	return false;
}

static __always_inline bool ospf_ok(__u32 dst, __u8 ttl, __u8 version, __u8 type)
{
	if (version != 2 || type < 1 || type > 5)
		return false;
	if (dst == ALL_SPF_ROUTERS || dst == ALL_D_ROUTERS)
		return ttl == 1;
	return route_policy.ospf_unicast && (dst >> 28) != 14;
}

static __always_inline bool vrrp_ok(__u32 dst, __u8 ttl, __u8 version_type)
{
	__u8 version = version_type >> 4;

	if (version != 2 && version != 3)
		return false;
	return (version_type & 0x0F) == 1 && ttl == 255 && dst == VRRP_GROUP;
}

static __always_inline void count_violator(__u32 src)
{
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&violators, &src);
	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	if (!bpf_map_update_elem(&violators, &src, &one, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(&violators, &src);
	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("xdp")
int route_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u8 *l4;
	__u16 proto;
	__u32 slot, key, src, dst;
	bool ok;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		__sync_fetch_and_add(&tagged, 1);
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_PASS;
	/* later fragments hold no protocol header to judge */
	if (ip->frag_off & bpf_htons(0x1fff)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}
	src = bpf_ntohl(ip->saddr);
	dst = bpf_ntohl(ip->daddr);
	l4 = (void *)ip + ip->ihl * 4;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = (void *)l4;

		if (l4 + 4 > (__u8 *)data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return XDP_DROP;
		}
		if (tcp->source != bpf_htons(BGP_PORT) && tcp->dest != bpf_htons(BGP_PORT))
			return XDP_PASS;
		slot = SLOT_BGP;
		ok = ip->ttl >= route_policy.bgp_min_ttl;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = (void *)l4;

		if ((void *)(udp + 1) > data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return XDP_DROP;
		}
		if (udp->source != bpf_htons(RIP_PORT) && udp->dest != bpf_htons(RIP_PORT))
			return XDP_PASS;
		/* command, version and two zero bytes */
		if (l4 + 12 > (__u8 *)data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return XDP_DROP;
		}
		slot = SLOT_RIP;
		ok = rip_ok(dst, l4[8], l4[9]);
		break;
	}
	case IPPROTO_OSPF:
		/* the 24-byte OSPF header */
		if (l4 + 24 > (__u8 *)data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return XDP_DROP;
		}
		slot = SLOT_OSPF;
		ok = ospf_ok(dst, ip->ttl, l4[0], l4[1]);
		break;
	case IPPROTO_VRRP:
		if (l4 + 8 > (__u8 *)data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return XDP_DROP;
		}
		slot = SLOT_VRRP;
		ok = vrrp_ok(dst, ip->ttl, l4[0]);
		break;
	default:
		return XDP_PASS;
	}

	__sync_fetch_and_add(&routing_packets, 1);
	key = slot * 2 + !ok;
	cnt = bpf_map_lookup_elem(&verdicts, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (ok)
		return XDP_PASS;
	count_violator(src);
	if ((route_policy.enforce >> slot) & 1)
		return XDP_DROP;
	__sync_fetch_and_add(&monitored, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
