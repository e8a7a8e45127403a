// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_gre_decap.ks: terminate plain GRE (no options,
 * version 0) over IPv4 to the configured endpoint — strip the outer IPv4 + GRE headers with
 * bpf_xdp_adjust_head, write the original MACs and the inner EtherType in front of the inner
 * packet, count per inner EtherType and pass it on. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_ALEN 6
#define ETH_HLEN 14
#define GRE_HLEN 4

/* why a packet is not decapsulated */
enum { NOT_OURS = 1, GRE_OPTIONS = 2, INNER_UNKNOWN = 3 };

struct grehdr_plain {
	__be16 flags_ver;
	__be16 proto;
};

/* config tunnel { endpoint: u32 = 0 } */
struct tunnel_config {
	__u32 endpoint;	/* network byte order */
};

struct tunnel_config tunnel SEC(".data.tunnel") = {
	.endpoint = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);	/* inner EtherType, host order */
	__type(value, __u64);
} decap_by_proto SEC(".maps");

__u64 gre_with_options = 0;
__u64 gre_unknown_inner = 0;

/* decap_by_proto[proto] += 1: add to the entry, creating it when missing */
static __always_inline void count_proto(__u16 proto)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&decap_by_proto, &proto);

	if (!v) {
		if (!bpf_map_update_elem(&decap_by_proto, &proto, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&decap_by_proto, &proto);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int gre_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct grehdr_plain *gre;
	unsigned char macs[2 * ETH_ALEN];
	__u32 ihl, strip;
	__be16 inner;

	if (data + ETH_HLEN + sizeof(*ip) + GRE_HLEN > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_GRE || ip->daddr != tunnel.endpoint)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3FFF))
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	gre = (void *)ip + ihl;
	if ((void *)(gre + 1) > data_end)
		return XDP_PASS;
	if (gre->flags_ver != 0) {
		__sync_fetch_and_add(&gre_with_options, 1);
		return XDP_PASS;
	}
	inner = gre->proto;
	if (inner != bpf_htons(ETH_P_IP) && inner != bpf_htons(ETH_P_IPV6)) {
		__sync_fetch_and_add(&gre_unknown_inner, 1);
		return XDP_PASS;
	}
	strip = ihl + GRE_HLEN;
	__builtin_memcpy(macs, eth, sizeof(macs));

	if (bpf_xdp_adjust_head(ctx, strip))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth, macs, sizeof(macs));
	eth->h_proto = inner;
	count_proto(bpf_ntohs(inner));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
