// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_ipip_decap.ks: IP-in-IP termination. Frames with outer
 * IPv4 protocol 4 to the configured endpoint are validated (outer: version 4, IHL 5, no MF or
 * fragment offset, 40 <= tot_len <= frame - 14; inner: present, version 4, IHL >= 5,
 * IHL*4 <= tot_len == outer tot_len - 20), then the outer header is removed with
 * bpf_xdp_adjust_head and the saved Ethernet header rewritten in front of the inner packet.
 * Packets/bytes per inner protocol go to a per-CPU array; drops are counted per reason. The
 * .ks throw/catch becomes validate() returning the reason code. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_IPIP 4

#define BAD_OUTER 1
#define OUTER_FRAGMENT 2
#define INNER_TRUNCATED 3
#define BAD_INNER 4
#define ADJUST_FAILED 5

struct tunnel_config {
	__u32 endpoint;
};

struct DecapStats {
	__u64 packets;
	__u64 bytes;
};

struct tunnel_config tunnel SEC(".data.tunnel") = {
	.endpoint = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct DecapStats);
} decap_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} decap_errors SEC(".maps");

/* Returns 0 and the inner protocol, or the drop reason. */
static __always_inline int validate(void *data, void *data_end, struct iphdr *outer, __u8 *proto)
{
	struct iphdr *inner = (void *)(outer + 1);
	__u32 tot, itot;

	if (outer->version != 4 || outer->ihl != 5)
		return BAD_OUTER;
	if (outer->frag_off & bpf_htons(0x3fff))
		return OUTER_FRAGMENT;
	tot = bpf_ntohs(outer->tot_len);
	if (tot < 40 || 14 + tot > (__u64)(data_end - data))
		return BAD_OUTER;
	if ((void *)(inner + 1) > data_end)
		return INNER_TRUNCATED;
	if (inner->version != 4 || inner->ihl < 5)
		return BAD_INNER;
	itot = bpf_ntohs(inner->tot_len);
	if (itot < inner->ihl * 4 || itot + 20 != tot)
		return BAD_INNER;
	*proto = inner->protocol;
	return 0;
}

SEC("xdp")
int ipip_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, saved;
	struct iphdr *outer = data + sizeof(*eth);
	struct DecapStats *st;
	__u32 key;
	__u64 *err;
	__u8 proto = 0;
	int reason;

	if ((void *)(outer + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (outer->protocol != IPPROTO_IPIP || outer->daddr != tunnel.endpoint)
		return XDP_PASS;

	reason = validate(data, data_end, outer, &proto);
	if (reason)
		goto drop;

	__builtin_memcpy(&saved, eth, sizeof(saved));
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr))) {
		reason = ADJUST_FAILED;
		goto drop;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 34 > data_end) {
		reason = ADJUST_FAILED;
		goto drop;
	}
	__builtin_memcpy(data, &saved, sizeof(saved));

	key = proto;
	st = bpf_map_lookup_elem(&decap_stats, &key);
	if (st) {
		st->packets += 1;
		st->bytes += data_end - data;
	}
	return XDP_PASS;

drop:
	key = reason;
	err = bpf_map_lookup_elem(&decap_errors, &key);
	if (err)
		__sync_fetch_and_add(err, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
