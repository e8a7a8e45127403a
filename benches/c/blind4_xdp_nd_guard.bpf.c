// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_nd_guard.ks: RFC 4861 validity checks for RS/RA/NS/NA
 * directly after the IPv6 header (hop limit 255, code 0, minimum length within the frame,
 * non-multicast NS/NA target, no solicited NA to multicast, link-local RA source). Invalid
 * messages are counted per reason and dropped; valid ones are counted per type. The .ks
 * throw/catch becomes validate_nd() returning -reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58

#define ND_RS 133
#define ND_RA 134
#define ND_NS 135
#define ND_NA 136

#define NA_FLAG_SOLICITED 0x40

#define E_TRUNCATED 1
#define E_SHORT 2
#define E_HOP_LIMIT 3
#define E_CODE 4
#define E_MCAST_TARGET 5
#define E_SOLICITED_MCAST 6
#define E_RA_SOURCE 7

struct nd_msg_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u8 flags;
	__u8 reserved[3];
	__u8 target[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} nd_rejects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u8);
	__type(value, __u64);
} nd_accepted SEC(".maps");

/* The ND type of a valid message, 0 when not ND, -reason when invalid. */
static __always_inline int validate_nd(void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct nd_msg_hdr *nd = (void *)(ip6 + 1);
	__u32 min_len, plen;
	__u8 t;

	if ((void *)&nd->code > data_end)
		return 0;
	t = nd->type;
	switch (t) {
	case ND_RS:
		min_len = 8;
		break;
	case ND_RA:
		min_len = 16;
		break;
	case ND_NS:
	case ND_NA:
		min_len = 24;
		break;
	default:
		return 0;
	}
	plen = bpf_ntohs(ip6->payload_len);
	if (plen < min_len)
		return -E_SHORT;
	if ((void *)&nd->target > data_end || (void *)nd + plen > data_end)
		return -E_TRUNCATED;
	if (ip6->hop_limit != 255)
		return -E_HOP_LIMIT;
	if (nd->code != 0)
		return -E_CODE;
	if (t == ND_RA) {
		if (ip6->saddr.in6_u.u6_addr8[0] != 0xfe ||
		    (ip6->saddr.in6_u.u6_addr8[1] & 0xc0) != 0x80)
			return -E_RA_SOURCE;
	} else if (t == ND_NS || t == ND_NA) {
		if ((void *)(nd + 1) > data_end)
			return -E_TRUNCATED;
		if (nd->target[0] == 0xff)
			return -E_MCAST_TARGET;
		if (t == ND_NA && ip6->daddr.in6_u.u6_addr8[0] == 0xff &&
		    (nd->flags & NA_FLAG_SOLICITED))
			return -E_SOLICITED_MCAST;
	}
	return t;
}

SEC("xdp")
int nd_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u64 *cnt, one = 1;
	__u32 reason;
	__u8 type;
	int ret;

	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if (ip6->nexthdr != IPPROTO_ICMPV6)
		return XDP_PASS;

	ret = validate_nd(data, data_end);
	if (ret < 0) {
		reason = -ret;
		cnt = bpf_map_lookup_elem(&nd_rejects, &reason);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		return XDP_DROP;
	}
	if (ret) {
		type = ret;
		cnt = bpf_map_lookup_elem(&nd_accepted, &type);
		if (cnt) {
			__sync_fetch_and_add(cnt, 1);
		} else if (bpf_map_update_elem(&nd_accepted, &type, &one, BPF_NOEXIST)) {
			cnt = bpf_map_lookup_elem(&nd_accepted, &type);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
