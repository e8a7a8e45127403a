// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind10_xdp_pppoe_sessions.ks: validates PPPoE
 * session frames (optionally behind one 802.1Q tag), drops malformed, oversize and blocked
 * sessions, and counts frames and frame bytes per session id, frames per PPP protocol and
 * carried IPv4 packets with TTL 1. PPPoE discovery frames are counted and passed. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define ETH_P_PPP_DISC 0x8863
#define ETH_P_PPP_SES 0x8864

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057
#define PPP_IPCP 0x8021
#define PPP_IPV6CP 0x8057
#define PPP_LCP 0xc021

enum {
	SLOT_IPV4 = 0,
	SLOT_IPV6 = 1,
	SLOT_LCP = 2,
	SLOT_NCP = 3,
	SLOT_OTHER = 4,
};

/* config pppoe_policy { max_payload: u16 } */
struct pppoe_policy_config {
	__u16 max_payload;
};

struct pppoe_policy_config pppoe_policy SEC(".data.pppoe_policy") = {
	.max_payload = 1492,
};

/* session id -> frames */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u16);
	__type(value, __u64);
} session_packets SEC(".maps");

/* session id -> frame bytes */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u16);
	__type(value, __u64);
} session_bytes SEC(".maps");

/* blocklist: session id -> frames dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} blocked_sessions SEC(".maps");

/* SLOT_* -> frames */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} ppp_protocols SEC(".maps");

/* .bss, in declaration order */
__u64 discovery_frames = 0;
__u64 tagged_frames = 0;
__u64 malformed_frames = 0;
__u64 oversize_frames = 0;
__u64 ttl_expiring = 0;

/* m[key] += n on a hash map: atomic add, inserting the entry when missing */
static __always_inline void session_add(void *map, __u16 sid, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, &sid);

	if (val) {
		__sync_fetch_and_add(val, n);
		return;
	}
	if (bpf_map_update_elem(map, &sid, &n, BPF_NOEXIST)) {
		val = bpf_map_lookup_elem(map, &sid);
		if (val)
			__sync_fetch_and_add(val, n);
	}
}

static __always_inline __u32 protocol_slot(__u16 proto)
{
	switch (proto) {
	case PPP_IPV4:
		return SLOT_IPV4;
	case PPP_IPV6:
		return SLOT_IPV6;
	case PPP_LCP:
		return SLOT_LCP;
	case PPP_IPCP:
	case PPP_IPV6CP:
		return SLOT_NCP;
	default:
		return SLOT_OTHER;
	}
}

static __always_inline int drop_malformed(void)
{
	__sync_fetch_and_add(&malformed_frames, 1);
	return XDP_DROP;
}

SEC("xdp")
int pppoe_sessions(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct pppoe_hdr *ph;
	__be16 *ppp_proto;
	__u16 h_proto, sid, len, proto;
	__u32 slot;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	h_proto = bpf_ntohs(eth->h_proto);
	ph = (void *)(eth + 1);
	if (h_proto == ETH_P_8021Q) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		__sync_fetch_and_add(&tagged_frames, 1);
		h_proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		ph = (void *)(vh + 1);
	}
	if (h_proto == ETH_P_PPP_DISC) {
		__sync_fetch_and_add(&discovery_frames, 1);
		return XDP_PASS;
	}
	if (h_proto != ETH_P_PPP_SES)
		return XDP_PASS;

	/* 6-byte PPPoE header, then the 2-byte PPP protocol */
	ppp_proto = (void *)(ph + 1);
	if ((void *)(ppp_proto + 1) > data_end)
		return drop_malformed();
	if (ph->ver != 1 || ph->type != 1 || ph->code != 0)
		return drop_malformed();
	sid = bpf_ntohs(ph->sid);
	len = bpf_ntohs(ph->length);
	if (sid == 0 || len < 2)
		return drop_malformed();
	/* the payload may be followed by Ethernet padding, but must not run past the frame */
	if ((void *)ppp_proto + len > data_end)
		return drop_malformed();
	if (len > pppoe_policy.max_payload) {
		__sync_fetch_and_add(&oversize_frames, 1);
		return XDP_DROP;
	}
	cnt = bpf_map_lookup_elem(&blocked_sessions, &sid);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
		return XDP_DROP;
	}

	session_add(&session_packets, sid, 1);
	session_add(&session_bytes, sid, data_end - data);
	proto = bpf_ntohs(*ppp_proto);
	slot = protocol_slot(proto);
	cnt = bpf_map_lookup_elem(&ppp_protocols, &slot);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	if (proto == PPP_IPV4) {
		struct iphdr *ip = (void *)(ppp_proto + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		if (ip->version == 4 && ip->ttl == 1)
			__sync_fetch_and_add(&ttl_expiring, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
