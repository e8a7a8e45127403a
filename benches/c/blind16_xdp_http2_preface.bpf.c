// SPDX-License-Identifier: GPL-2.0
/* blind16_xdp_http2_preface.bpf.c — C twin of blind16_xdp_http2_preface.ks: classify TCP
 * payloads to ports 80/8080 as HTTP/2 preface, HTTP/1.x request or other, count them per
 * destination port, and drop HTTP/2 prefaces to ports whose policy slot disables h2. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define IPPROTO_TCP_	6

enum kind { KIND_H2 = 0, KIND_H1 = 1, KIND_OTHER = 2 };

struct http_port_stats {
	__u64 h2;
	__u64 h1;
	__u64 other;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct http_port_stats);
} port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} h2_disabled SEC(".maps");

__u64 h2_dropped = 0;

/* Payload prefixes as little-endian loads (BPF is little-endian here). */
#define PREFACE_0	0x5448202a20495250ULL	/* "PRI * HT" */
#define PREFACE_1	0x0a0d302e322f5054ULL	/* "TP/2.0\r\n" */
#define PREFACE_2	0x0a0d0a0d4d530a0dULL	/* "\r\nSM\r\n\r\n" */
#define M_GET		0x20544547U		/* "GET " */
#define M_PUT		0x20545550U		/* "PUT " */
#define M_POST		0x54534f50U		/* "POST" */
#define M_HEAD		0x44414548U		/* "HEAD" */

static __always_inline enum kind classify(const __u8 *p, __u32 plen, const void *data_end)
{
	if (plen >= 24 && (const void *)(p + 24) <= data_end) {
		const __u64 *w = (const void *)p;
		if (w[0] == PREFACE_0 && w[1] == PREFACE_1 && w[2] == PREFACE_2)
			return KIND_H2;
	}
	if (plen < 4 || (const void *)(p + 4) > data_end)
		return KIND_OTHER;

	__u32 m = *(const __u32 *)p;
	if (m == M_GET || m == M_PUT)
		return KIND_H1;
	if (plen >= 5 && (const void *)(p + 5) <= data_end && p[4] == ' ' &&
	    (m == M_POST || m == M_HEAD))
		return KIND_H1;
	return KIND_OTHER;
}

SEC("xdp")
int http_census(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__u32 ihl = ip->ihl;
	if (ihl < 5 || ip->protocol != IPPROTO_TCP_)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;

	struct tcphdr *tcp = (void *)ip + ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;

	__u16 port = bpf_ntohs(tcp->dest);
	__u32 slot;
	if (port == 80)
		slot = 0;
	else if (port == 8080)
		slot = 1;
	else
		return XDP_PASS;

	__u32 doff = tcp->doff;
	if (doff < 5 || (void *)tcp + doff * 4 > data_end)
		return XDP_PASS;

	__u32 headers = ihl * 4 + doff * 4;
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len <= headers)
		return XDP_PASS;	/* no payload */

	enum kind k = classify((__u8 *)tcp + doff * 4, tot_len - headers, data_end);

	struct http_port_stats *st = bpf_map_lookup_elem(&port_stats, &port);
	if (!st) {
		struct http_port_stats zero = {};
		bpf_map_update_elem(&port_stats, &port, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&port_stats, &port);
	}
	if (st) {
		if (k == KIND_H2)
			__sync_fetch_and_add(&st->h2, 1);
		else if (k == KIND_H1)
			__sync_fetch_and_add(&st->h1, 1);
		else
			__sync_fetch_and_add(&st->other, 1);
	}

	if (k == KIND_H2) {
		__u32 *off = bpf_map_lookup_elem(&h2_disabled, &slot);
		if (off && *off) {
			__sync_fetch_and_add(&h2_dropped, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
