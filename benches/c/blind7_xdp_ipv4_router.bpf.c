// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_xdp_ipv4_router.ks: forwards IPv4 packets for the
 * configured /24 with XDP_TX after verifying the header checksum (a loop over the header's
 * 16-bit words), dropping bad checksums and expiring TTLs, decrementing the TTL with an
 * RFC 1624 incremental checksum update and setting the MACs from the config. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define MAX_HDR_WORDS 30

#define FORWARDED 0
#define BAD_CHECKSUM 1
#define TTL_EXPIRED 2
#define BAD_HEADER 3

struct nexthop_config {
	__be32 dest_net;
	__u8 src_mac[ETH_ALEN];
	__u8 dst_mac[ETH_ALEN];
};

struct nexthop_config nexthop SEC(".data.nexthop") = {
	.dest_net = 0,
	.src_mac = { 0 },
	.dst_mac = { 0 },
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} router_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&router_stats, &slot);

	if (v)
		*v += 1;
}

static __always_inline __u32 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

/* RFC 1624 eqn. 3. One's-complement sums do not depend on byte order (RFC 1071), so the
 * words are used as they lie in the packet. */
static __always_inline __u16 csum_update(__u16 check, __u16 old, __u16 new)
{
	return ~fold((__u16)~check + (__u16)~old + (__u32)new);
}

SEC("xdp")
int ipv4_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u16 *words_p, old, new;
	__u32 words, sum = 0;
	int i;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4)
		return XDP_PASS;
	if ((ip->daddr & bpf_htonl(0xffffff00)) != nexthop.dest_net)
		return XDP_PASS;

	words = ip->ihl * 2;
	if (words < 10 || (void *)ip + words * 2 > data_end) {
		count(BAD_HEADER);
		return XDP_DROP;
	}
	words_p = (__u16 *)ip;
	for (i = 0; i < MAX_HDR_WORDS; i++) {
		if (i >= words)
			break;
		if ((void *)(words_p + i + 1) > data_end)	/* never: the header is in the frame */
			break;
		sum += words_p[i];
	}
	if (fold(sum) != 0xffff) {
		count(BAD_CHECKSUM);
		return XDP_DROP;
	}

	if (ip->ttl <= 1) {
		count(TTL_EXPIRED);
		return XDP_DROP;
	}
	/* TTL and protocol share a 16-bit word */
	old = *(__u16 *)&ip->ttl;
	ip->ttl--;
	new = *(__u16 *)&ip->ttl;
	ip->check = csum_update(ip->check, old, new);

	__builtin_memcpy(eth->h_source, nexthop.src_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, nexthop.dst_mac, ETH_ALEN);
	count(FORWARDED);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
