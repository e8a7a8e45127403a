// SPDX-License-Identifier: GPL-2.0
/* blind15_xdp_bgp_guard.bpf.c — C twin of blind15_xdp_bgp_guard.ks.
 * XDP guard for BGP (TCP/179, either direction): GTSM per configured peer,
 * validation of the first BGP message header in the segment, per-peer and
 * per-type message counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define BGP_PORT		179
#define BGP_HDR_LEN		19
#define BGP_MAX_LEN		4096

#define BGP_OPEN		1
#define BGP_UPDATE		2
#define BGP_NOTIFICATION	3
#define BGP_KEEPALIVE		4
#define BGP_ROUTE_REFRESH	5

enum bgp_error {
	BGP_OK = 0,
	BGP_BAD_MARKER = 1,
	BGP_BAD_LENGTH = 2,
	BGP_BAD_TYPE = 3,
	BGP_TRUNCATED = 4,
};

struct bgp_hdr {
	__u8 marker[16];
	__be16 length;
	__u8 type;
};

struct peer_state {
	__u8 min_ttl;
	__u32 ttl_drops;
	__u32 bad_msgs;
	__u64 msgs[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct peer_state);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} type_totals SEC(".maps");

__u64 segments = 0;
__u64 gtsm_drops = 0;
__u64 marker_drops = 0;
__u64 malformed = 0;

/* Validates the BGP header at h (19 bytes known to be in the frame);
 * returns its type (1..5) or a negative bgp_error. */
static __always_inline int bgp_msg_type(const struct bgp_hdr *h)
{
	__u32 len, min_len;
	__u8 t;

	if (*(const __u64 *)&h->marker[0] != ~0ULL ||
	    *(const __u64 *)&h->marker[8] != ~0ULL)
		return -BGP_BAD_MARKER;
	len = bpf_ntohs(h->length);
	t = h->type;
	if (len < BGP_HDR_LEN || len > BGP_MAX_LEN)
		return -BGP_BAD_LENGTH;
	switch (t) {
	case BGP_OPEN:		min_len = 29; break;
	case BGP_UPDATE:	min_len = 23; break;
	case BGP_NOTIFICATION:	min_len = 21; break;
	case BGP_KEEPALIVE:	min_len = 19; break;
	case BGP_ROUTE_REFRESH:	min_len = 23; break;
	default:
		return -BGP_BAD_TYPE;
	}
	if (len < min_len)
		return -BGP_BAD_LENGTH;
	if ((t == BGP_KEEPALIVE || t == BGP_ROUTE_REFRESH) && len != min_len)
		return -BGP_BAD_LENGTH;
	return t;
}

SEC("xdp")
int bgp_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct peer_state *peer;
	struct bgp_hdr *bgp;
	struct tcphdr *tcp;
	__u32 ihl, doff, tot_len, saddr, key;
	__u64 *total;
	int t;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < 20 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (tcp->source != bpf_htons(BGP_PORT) && tcp->dest != bpf_htons(BGP_PORT))
		return XDP_PASS;

	__sync_fetch_and_add(&segments, 1);
	saddr = ip->saddr;
	peer = bpf_map_lookup_elem(&peers, &saddr);
	if (peer && ip->ttl < peer->min_ttl) {
		__sync_fetch_and_add(&peer->ttl_drops, 1);
		__sync_fetch_and_add(&gtsm_drops, 1);
		return XDP_DROP;
	}

	doff = tcp->doff * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (doff < 20 || tot_len < ihl + doff) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	if (tot_len - ihl - doff < BGP_HDR_LEN)
		return XDP_PASS;

	bgp = (void *)tcp + doff;
	if ((void *)bgp + BGP_HDR_LEN > data_end)
		t = -BGP_TRUNCATED;
	else
		t = bgp_msg_type(bgp);
	if (t < 0) {
		if (t == -BGP_BAD_MARKER)
			__sync_fetch_and_add(&marker_drops, 1);
		else
			__sync_fetch_and_add(&malformed, 1);
		if (peer)
			__sync_fetch_and_add(&peer->bad_msgs, 1);
		return XDP_DROP;
	}

	key = t;
	total = bpf_map_lookup_elem(&type_totals, &key);
	if (total)
		*total += 1;
	if (peer)
		__sync_fetch_and_add(&peer->msgs[t - 1], 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
