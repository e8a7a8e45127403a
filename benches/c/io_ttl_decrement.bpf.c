// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_ttl_decrement.ks: an XDP router fast path
 * (LPM route lookup, TTL decrement with an incremental checksum update, next-hop MACs,
 * redirect or XDP_TX). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6

enum FwdStat { Forwarded = 0, Expired = 1, NoRoute = 2, SlowPath = 3 };

struct RouteKey {
	__u32 prefixlen;
	__be32 addr;
};

struct NextHop {
	unsigned char dmac[ETH_ALEN];
	unsigned char smac[ETH_ALEN];
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct RouteKey);
	__type(value, struct NextHop);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} fwd_stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&fwd_stats, &stat);

	if (v)
		*v += 1;
}

SEC("xdp")
int router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct RouteKey key;
	struct NextHop *hop;
	__u32 sum;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl != 5) {
		count(SlowPath);
		return XDP_PASS;
	}
	if (ip->ttl <= 1) {
		count(Expired);
		return XDP_PASS;
	}

	key.prefixlen = 32;
	key.addr = ip->daddr;
	hop = bpf_map_lookup_elem(&routes, &key);
	if (!hop) {
		count(NoRoute);
		return XDP_PASS;
	}

	ip->ttl--;
	/* the TTL is the high byte of its 16-bit word: the checksum grows by 0x0100 */
	sum = bpf_ntohs(ip->check) + 0x0100;
	sum = (sum & 0xFFFF) + (sum >> 16);
	ip->check = bpf_htons(sum);
	__builtin_memcpy(eth->h_dest, hop->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, hop->smac, ETH_ALEN);
	count(Forwarded);
	if (!hop->ifindex)
		return XDP_TX;
	return bpf_redirect(hop->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
