// SPDX-License-Identifier: GPL-2.0
/* GUE (variant 0) decapsulation at XDP: verify the outer IPv4 header checksum
 * (options included), strip outer IPv4 + UDP + 4-byte GUE header with
 * bpf_xdp_adjust_head, rebuild the Ethernet header for the inner protocol. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_ALEN	6
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define GUE_HLEN	4

struct gue_config {
	__u16 port;
};

struct gue_config gue SEC(".data.gue") = {
	.port = 6080,
};

enum {
	GS_DECAP_V4	= 0,
	GS_DECAP_V6	= 1,
	GS_CONTROL	= 2,
	GS_BAD_CSUM	= 3,
	GS_BAD_GUE	= 4,
	GS_BAD_PROTO	= 5,
	GS_TRUNCATED	= 6,
	GS_ADJUST_FAIL	= 7,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} gue_stats SEC(".maps");

__u64 gue_decap_bytes = 0;

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&gue_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int drop_with(__u32 reason)
{
	stat_inc(reason);
	return XDP_DROP;
}

SEC("xdp")
int gue_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__u32 ihl = ip->ihl * 4;

	if (ihl < sizeof(*ip) || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (bpf_ntohs(ip->frag_off) & 0x3FFF)
		return XDP_PASS;

	__u32 udp_off = sizeof(*eth) + ihl;
	struct udphdr *udp = data + udp_off;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (bpf_ntohs(udp->dest) != gue.port)
		return XDP_PASS;

	/* Outer header checksum: the one's complement sum of all header
	 * words, options included, folds to 0xffff. */
	__u16 *words = (void *)ip;
	__u32 nwords = ihl / 2;
	__u32 sum = 0;

	for (__u32 i = 0; i < 30; i++) {
		if (i >= nwords)
			break;
		if ((void *)(words + i + 1) > data_end)
			return XDP_PASS;
		sum += words[i];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return drop_with(GS_BAD_CSUM);

	__u32 gue_off = udp_off + sizeof(*udp);
	__u8 *gh = data + gue_off;

	if ((void *)(gh + GUE_HLEN) > data_end)
		return drop_with(GS_TRUNCATED);

	__u8 ver = gh[0] >> 6;
	__u8 control = (gh[0] >> 5) & 1;
	__u8 hlen = gh[0] & 0x1f;

	if (ver != 0)
		return drop_with(GS_BAD_GUE);
	if (control) {
		/* Control messages go to the local GUE endpoint. */
		stat_inc(GS_CONTROL);
		return XDP_PASS;
	}
	if (hlen != 0)
		return drop_with(GS_BAD_GUE);

	__u32 inner_off = gue_off + GUE_HLEN;
	__u8 *inner = data + inner_off;
	__u16 eth_type;
	__u32 slot;

	if (gh[1] == IPPROTO_IPIP) {
		if ((void *)(inner + sizeof(struct iphdr)) > data_end)
			return drop_with(GS_TRUNCATED);
		if ((inner[0] >> 4) != 4)
			return drop_with(GS_BAD_PROTO);
		eth_type = ETH_P_IP;
		slot = GS_DECAP_V4;
	} else if (gh[1] == IPPROTO_IPV6) {
		if ((void *)(inner + sizeof(struct ipv6hdr)) > data_end)
			return drop_with(GS_TRUNCATED);
		if ((inner[0] >> 4) != 6)
			return drop_with(GS_BAD_PROTO);
		eth_type = ETH_P_IPV6;
		slot = GS_DECAP_V6;
	} else {
		return drop_with(GS_BAD_PROTO);
	}

	/* Keep the MACs, pull outer IPv4 + UDP + GUE off the front. */
	struct ethhdr old_eth;

	__builtin_memcpy(&old_eth, eth, sizeof(old_eth));
	if (bpf_xdp_adjust_head(ctx, (int)(inner_off - sizeof(*eth))))
		return drop_with(GS_ADJUST_FAIL);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_with(GS_ADJUST_FAIL);
	__builtin_memcpy(eth->h_dest, old_eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old_eth.h_source, ETH_ALEN);
	eth->h_proto = bpf_htons(eth_type);

	stat_inc(slot);
	__sync_fetch_and_add(&gue_decap_bytes, (__u64)(data_end - data) - sizeof(*eth));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
