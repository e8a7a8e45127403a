// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_xdp_6in4_decap.ks: 6in4 (IPv4 protocol 41) termination.
 * The outer source must be a known endpoint (else drop); the outer header must have version 4,
 * IHL >= 5, no MF/fragment offset and TTL >= the endpoint's min_ttl; the inner IPv6 header must
 * be in the frame, version 6, with its payload inside the frame. The outer header (IHL * 4
 * bytes) is removed with bpf_xdp_adjust_head and the Ethernet header written back with
 * EtherType 0x86DD. Per (endpoint, inner /64) state {packets, bytes, last hop limit} lives in an
 * LRU hash. The .ks throwing checkers become validate() returning the reason; the deferred
 * lookup count is done where the defer is registered. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_IPV6_ENCAP 41

enum {
	E_OUTER_HEADER = 1,
	E_FRAGMENT = 2,
	E_TTL = 3,
	E_INNER_SHORT = 4,
	E_INNER_VERSION = 5,
	E_INNER_LENGTH = 6,
	E_ADJUST = 7,
};

enum {
	C_NOT_6IN4 = 0,
	C_UNKNOWN_ENDPOINT = 1,
	C_DECAPSULATED = 2,
	C_NEW_FLOW = 3,
};

struct Endpoint {
	__u32 tunnel_id;
	__u8 min_ttl;
};

struct TunnelKey {
	__u32 outer_src;
	__u64 inner_prefix;
};

struct TunnelState {
	__u64 packets;
	__u64 bytes;
	__u8 last_hop_limit;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct Endpoint);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct TunnelKey);
	__type(value, struct TunnelState);
} tunnel_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} decap_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} decap_errors SEC(".maps");

__u64 tunnel_lookups = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

struct inner_info {
	__u64 prefix;
	__u32 bytes;
	__u8 hop_limit;
	__u32 hlen;
};

/* 0 with the outer header length and the inner packet's data, or the drop reason */
static __always_inline int validate(void *data, void *data_end, struct iphdr *ip, __u8 min_ttl,
				    struct inner_info *in)
{
	struct ipv6hdr *ip6;
	__u32 hlen, plen;

	if (ip->version != 4 || ip->ihl < 5)
		return E_OUTER_HEADER;
	if (ip->frag_off & bpf_htons(0x3fff))
		return E_FRAGMENT;
	if (ip->ttl < min_ttl)
		return E_TTL;
	hlen = ip->ihl * 4;

	ip6 = (void *)ip + hlen;
	if ((void *)(ip6 + 1) > data_end)
		return E_INNER_SHORT;
	if (ip6->version != 6)
		return E_INNER_VERSION;
	plen = bpf_ntohs(ip6->payload_len);
	if ((__u64)(sizeof(struct ethhdr) + hlen + sizeof(*ip6) + plen) > (__u64)(data_end - data))
		return E_INNER_LENGTH;

	in->hlen = hlen;
	in->prefix = (__u64)bpf_ntohl(ip6->saddr.in6_u.u6_addr32[0]) << 32 |
		     bpf_ntohl(ip6->saddr.in6_u.u6_addr32[1]);
	in->bytes = sizeof(*ip6) + plen;
	in->hop_limit = ip6->hop_limit;
	return 0;
}

SEC("xdp")
int sit_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, saved;
	struct iphdr *ip = data + sizeof(*eth);
	struct inner_info in;
	struct Endpoint *ep;
	struct TunnelKey key;
	struct TunnelState *st;
	__u32 outer_src;
	int reason;

	if ((void *)(ip + 1) > data_end) {
		count(&decap_counts, C_NOT_6IN4);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_IPV6_ENCAP) {
		count(&decap_counts, C_NOT_6IN4);
		return XDP_PASS;
	}

	/* the .ks defers this to every exit from here on */
	__sync_fetch_and_add(&tunnel_lookups, 1);
	outer_src = ip->saddr;
	ep = bpf_map_lookup_elem(&endpoints, &outer_src);
	if (!ep) {
		count(&decap_counts, C_UNKNOWN_ENDPOINT);
		return XDP_DROP;
	}

	reason = validate(data, data_end, ip, ep->min_ttl, &in);
	if (reason)
		goto drop;

	__builtin_memcpy(&saved, eth, sizeof(saved));
	saved.h_proto = bpf_htons(ETH_P_IPV6);
	if (bpf_xdp_adjust_head(ctx, (int)in.hlen)) {
		reason = E_ADJUST;
		goto drop;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr) > data_end) {
		reason = E_ADJUST;
		goto drop;
	}
	__builtin_memcpy(data, &saved, sizeof(saved));

	__builtin_memset(&key, 0, sizeof(key));
	key.outer_src = outer_src;
	key.inner_prefix = in.prefix;
	st = bpf_map_lookup_elem(&tunnel_state, &key);
	if (st) {
		st->packets += 1;
		st->bytes += in.bytes;
		st->last_hop_limit = in.hop_limit;
	} else {
		struct TunnelState init;

		__builtin_memset(&init, 0, sizeof(init));
		init.packets = 1;
		init.bytes = in.bytes;
		init.last_hop_limit = in.hop_limit;
		bpf_map_update_elem(&tunnel_state, &key, &init, BPF_ANY);
		count(&decap_counts, C_NEW_FLOW);
	}
	count(&decap_counts, C_DECAPSULATED);
	return XDP_PASS;

drop:
	count(&decap_errors, reason);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
