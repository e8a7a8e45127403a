// SPDX-License-Identifier: GPL-2.0
/* blind14_xdp_tos_remark.bpf.c — C twin of blind14_xdp_tos_remark.ks:
 * re-mark the DSCP of IPv4 packets (untagged or one 802.1Q tag) by source prefix.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP     0x0800
#define ETH_P_8021Q  0x8100
#define DSCP_KEEP    0xFF

struct src_prefix {
	__u32 prefixlen;
	__u32 addr;
};

struct dscp_stats_val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct src_prefix);
	__type(value, __u8);
} dscp_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct dscp_stats_val);
} dscp_stats SEC(".maps");

__u64 truncated = 0;
__u64 remarked = 0;

/* RFC 1624 eqn. 3 on network-order words (one's complement sums are byte-order neutral). */
static __always_inline void csum_replace2(__u16 *sum, __u16 old, __u16 new)
{
	__u32 csum = (__u16)~*sum + (__u16)~old + (__u32)new;

	csum = (csum & 0xffff) + (csum >> 16);
	csum += csum >> 16;
	*sum = ~csum;
}

SEC("xdp")
int tos_remark(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct dscp_stats_val *st;
	struct src_prefix key;
	struct iphdr *ip;
	__u16 proto;
	__u8 *want;
	__u8 tos, dscp;

	if ((void *)(eth + 1) > data_end)
		goto trunc;
	proto = eth->h_proto;
	ip = data + sizeof(*eth);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = data + sizeof(*eth);

		if ((void *)(vh + 1) > data_end)
			goto trunc;
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		goto trunc;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_PASS;

	tos = ip->tos;
	dscp = tos >> 2;
	key.prefixlen = 32;
	key.addr = ip->saddr;
	want = bpf_map_lookup_elem(&dscp_rules, &key);
	if (want) {
		__u8 nd = *want;

		if (nd <= 63 && nd != dscp) {
			__u16 hi = (__u16)*(__u8 *)ip << 8;	/* version/IHL byte */
			__u8 new_tos = (nd << 2) | (tos & 0x03);

			ip->tos = new_tos;
			csum_replace2(&ip->check, bpf_htons(hi | tos), bpf_htons(hi | new_tos));
			dscp = nd;
			__sync_fetch_and_add(&remarked, 1);
		}
	}

	{
		__u32 slot = dscp;

		st = bpf_map_lookup_elem(&dscp_stats, &slot);
		if (st) {
			st->packets += 1;
			st->bytes += bpf_ntohs(ip->tot_len);
		}
	}
	return XDP_PASS;

trunc:
	__sync_fetch_and_add(&truncated, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
