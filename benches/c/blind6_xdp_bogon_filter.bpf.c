// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind6_xdp_bogon_filter.ks: drops IPv4 packets
 * (behind at most one 802.1Q tag) whose source is a bogon, unless private ranges are allowed
 * and the source is RFC 1918; counts drops per reason and passed packets per IP protocol. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100

enum bogon_reason {
	THIS_NETWORK = 0,	/* 0.0.0.0/8 */
	PRIVATE_10 = 1,		/* 10.0.0.0/8 */
	LOOPBACK = 2,		/* 127.0.0.0/8 */
	LINK_LOCAL = 3,		/* 169.254.0.0/16 */
	PRIVATE_172 = 4,	/* 172.16.0.0/12 */
	PRIVATE_192 = 5,	/* 192.168.0.0/16 */
	MULTICAST = 6,		/* 224.0.0.0/4 */
	RESERVED = 7,		/* 240.0.0.0/4 */
	NOT_BOGON = 8,
};

/* config bogons { allow_private: bool } */
struct bogons_config {
	bool allow_private;
};

struct bogons_config bogons SEC(".data.bogons") = {
	.allow_private = false,
};

/* per enum bogon_reason */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} drop_reasons SEC(".maps");

/* IP protocol -> packets passed */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8);
	__type(value, __u64);
} passed_by_proto SEC(".maps");

/* .bss, in declaration order */
__u64 vlan_frames = 0;
__u64 malformed = 0;

static __always_inline enum bogon_reason classify(__u32 src)
{
	if ((src & 0xff000000) == 0x00000000)
		return THIS_NETWORK;
	if ((src & 0xff000000) == 0x0a000000)
		return PRIVATE_10;
	if ((src & 0xff000000) == 0x7f000000)
		return LOOPBACK;
	if ((src & 0xffff0000) == 0xa9fe0000)
		return LINK_LOCAL;
	if ((src & 0xfff00000) == 0xac100000)
		return PRIVATE_172;
	if ((src & 0xffff0000) == 0xc0a80000)
		return PRIVATE_192;
	if ((src & 0xf0000000) == 0xe0000000)
		return MULTICAST;
	if ((src & 0xf0000000) == 0xf0000000)
		return RESERVED;
	return NOT_BOGON;
}

SEC("xdp")
int bogon_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 one = 1, *cnt;
	__u32 reason;
	__u16 proto;
	__u8 l4proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;

	/* skip one 802.1Q tag */
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end) {
			__sync_fetch_and_add(&malformed, 1);
			return XDP_DROP;
		}
		__sync_fetch_and_add(&vlan_frames, 1);
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	reason = classify(bpf_ntohl(ip->saddr));
	if ((reason == PRIVATE_10 || reason == PRIVATE_172 || reason == PRIVATE_192) &&
	    bogons.allow_private)
		reason = NOT_BOGON;
	if (reason != NOT_BOGON) {
		cnt = bpf_map_lookup_elem(&drop_reasons, &reason);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		return XDP_DROP;
	}

	/* passed_by_proto[protocol] += 1, inserting the entry when missing */
	l4proto = ip->protocol;
	cnt = bpf_map_lookup_elem(&passed_by_proto, &l4proto);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&passed_by_proto, &l4proto, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&passed_by_proto, &l4proto);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
