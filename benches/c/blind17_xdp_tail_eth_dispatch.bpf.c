// SPDX-License-Identifier: GPL-2.0
/* Ethernet dispatcher with tail-called L3 stages at XDP
 * (hand-written twin of blind17_xdp_tail_eth_dispatch.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_ARP	0x0806
#define ETH_P_IPV6	0x86dd
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88a8

enum { E_RUNT, E_VLAN, E_IPV4, E_IPV6, E_ARP, E_OTHER, E_MAX };
enum { S_IPV4_MALFORMED, S_IPV4_TTL, S_IPV6_MALFORMED, S_IPV6_HOPLIMIT, S_MAX };
enum { A_REQUEST, A_REPLY, A_OTHER, A_MALFORMED, A_MAX };

/* prog_array slots, in order of first appearance of the tail-call targets */
enum { SLOT_IPV4, SLOT_IPV6, SLOT_ARP, SLOT_MAX };

struct l2_meta {
	__u32 l3_off;
	__u32 vlan_id;
};

struct mac_binding {
	__u8 addr[6];
};

struct arp_pkt {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

struct arp_conflict {
	__u64 ts_ns;
	__u32 ip;
	__u32 ifindex;
	__u16 vlan_id;
	__u8 expected[6];
	__u8 seen[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SLOT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2_meta);
} l2_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, E_MAX);
	__type(key, __u32);
	__type(value, __u64);
} eth_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} ipv4_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} ipv6_nexthdrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, A_MAX);
	__type(key, __u32);
	__type(value, __u64);
} arp_ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);	/* IPv4 address, host byte order */
	__type(value, struct mac_binding);
} arp_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} arp_events SEC(".maps");

__u64 arp_conflicts = 0;
__u64 arp_events_lost = 0;

/* per-CPU counter */
static __always_inline void bump(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		*c += 1;
}

/* shared counter */
static __always_inline void bump_atomic(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("xdp")
int blind17_xdp_tail_eth_dispatch(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 proto, l3_off = 14, vlan_id = 0, zero = 0;
	struct l2_meta *meta;

	if ((void *)(data + 14) > data_end) {
		bump(&eth_stats, E_RUNT);
		return XDP_DROP;
	}
	proto = (data[12] << 8) | data[13];
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		if ((void *)(data + 18) > data_end) {
			bump(&eth_stats, E_RUNT);
			return XDP_DROP;
		}
		vlan_id = ((data[14] << 8) | data[15]) & 0x0fff;
		proto = (data[16] << 8) | data[17];
		l3_off = 18;
		bump(&eth_stats, E_VLAN);
	}

	meta = bpf_map_lookup_elem(&l2_scratch, &zero);
	if (meta) {
		meta->l3_off = l3_off;
		meta->vlan_id = vlan_id;
	}

	switch (proto) {
	case ETH_P_IP:
		bump(&eth_stats, E_IPV4);
		bpf_tail_call(ctx, &prog_array, SLOT_IPV4);
		return XDP_PASS;
	case ETH_P_IPV6:
		bump(&eth_stats, E_IPV6);
		bpf_tail_call(ctx, &prog_array, SLOT_IPV6);
		return XDP_PASS;
	case ETH_P_ARP:
		bump(&eth_stats, E_ARP);
		bpf_tail_call(ctx, &prog_array, SLOT_ARP);
		return XDP_PASS;
	default:
		bump(&eth_stats, E_OTHER);
		return XDP_PASS;
	}
}

static __always_inline __u32 scratch_l3_off(void)
{
	__u32 zero = 0;
	struct l2_meta *meta = bpf_map_lookup_elem(&l2_scratch, &zero);

	return meta ? meta->l3_off : 0;
}

SEC("xdp")
int ipv4_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = scratch_l3_off();
	struct iphdr *ip;

	if (off != 14 && off != 18)
		return XDP_ABORTED;
	ip = data + off;
	if ((void *)(ip + 1) > data_end) {
		bump(&stage_drops, S_IPV4_MALFORMED);
		return XDP_DROP;
	}
	if (ip->version != 4 || ip->ihl < 5) {
		bump(&stage_drops, S_IPV4_MALFORMED);
		return XDP_DROP;
	}
	if (ip->ttl <= 1) {
		bump(&stage_drops, S_IPV4_TTL);
		return XDP_DROP;
	}
	bump(&ipv4_protos, ip->protocol);
	return XDP_PASS;
}

SEC("xdp")
int ipv6_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = scratch_l3_off();
	struct ipv6hdr *ip6;

	if (off != 14 && off != 18)
		return XDP_ABORTED;
	ip6 = data + off;
	if ((void *)(ip6 + 1) > data_end) {
		bump(&stage_drops, S_IPV6_MALFORMED);
		return XDP_DROP;
	}
	if (ip6->version != 6) {
		bump(&stage_drops, S_IPV6_MALFORMED);
		return XDP_DROP;
	}
	if (ip6->hop_limit <= 1) {
		bump(&stage_drops, S_IPV6_HOPLIMIT);
		return XDP_DROP;
	}
	bump(&ipv6_nexthdrs, ip6->nexthdr);
	return XDP_PASS;
}

SEC("xdp")
int arp_stage(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct arp_conflict *ev;
	struct mac_binding *bound;
	struct l2_meta *meta;
	struct arp_pkt *arp;
	__u32 zero = 0, off, vlan_id = 0, ip;
	__u16 op;

	meta = bpf_map_lookup_elem(&l2_scratch, &zero);
	off = meta ? meta->l3_off : 0;
	if (off != 14 && off != 18)
		return XDP_ABORTED;
	arp = data + off;
	if ((void *)(arp + 1) > data_end) {
		bump_atomic(&arp_ops, A_MALFORMED);
		return XDP_DROP;
	}
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4) {
		bump_atomic(&arp_ops, A_MALFORMED);
		return XDP_DROP;
	}
	op = bpf_ntohs(arp->oper);
	if (op == 1) {
		bump_atomic(&arp_ops, A_REQUEST);
		return XDP_PASS;
	}
	if (op != 2) {
		bump_atomic(&arp_ops, A_OTHER);
		return XDP_PASS;
	}
	bump_atomic(&arp_ops, A_REPLY);

	ip = (__u32)arp->spa[0] << 24 | (__u32)arp->spa[1] << 16 |
	     (__u32)arp->spa[2] << 8 | arp->spa[3];
	bound = bpf_map_lookup_elem(&arp_bindings, &ip);
	if (!bound)
		return XDP_PASS;

	for (int i = 0; i < 6; i++) {
		if (bound->addr[i] != arp->sha[i])
			goto conflict;
	}
	return XDP_PASS;

conflict:
	__sync_fetch_and_add(&arp_conflicts, 1);
	if (meta)
		vlan_id = meta->vlan_id;
	ev = bpf_ringbuf_reserve(&arp_events, sizeof(*ev), 0);
	if (ev) {
		ev->ts_ns = bpf_ktime_get_ns();
		ev->ip = ip;
		ev->ifindex = ctx->ingress_ifindex;
		ev->vlan_id = vlan_id;
		__builtin_memcpy(ev->expected, bound->addr, 6);
		__builtin_memcpy(ev->seen, arp->sha, 6);
		ev->pad = 0;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&arp_events_lost, 1);
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
