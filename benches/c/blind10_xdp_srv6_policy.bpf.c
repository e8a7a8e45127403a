// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_xdp_srv6_policy.ks: SRv6 active-segment policy. IPv6 with a
 * type-4 routing header (SRH) is validated (segments_left <= last entry < max_segments,
 * hdrlen covers the segment list and fits the payload length, whole SRH in the frame), the
 * active segment segments[segments_left] (of the 8 struct Srh holds) is looked up in an IPv6 LPM trie and the action
 * (allow, drop, count-only) booked per CPU in {packets, bytes}. Malformed headers are dropped
 * and counted per reason; IPv4, plain IPv6, other routing types, unmatched segments and other
 * EtherTypes pass and are counted. The .ks throwing validator becomes srh_active_index()
 * returning a negative reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define NEXTHDR_ROUTING 43
#define ROUTING_TYPE_SRH 4
#define SRH_OFF 54
#define SRH_FIXED 8
#define MAX_SEGMENTS 8
#define NOT_SRH 256 /* above any segments_left */

enum {
	E_IPV6_SHORT = 1,
	E_SRH_SHORT = 2,
	E_SEGMENTS_LEFT = 3,
	E_LENGTH = 4,
	E_TOO_MANY = 5,
};

enum {
	T_IPV4 = 0,
	T_IPV6_PLAIN = 1,
	T_OTHER_ROUTING = 2,
	T_UNMATCHED = 3,
	T_NOT_IP = 4,
	T_BAD_ACTION = 5,
};

enum SegAction {
	SEG_ALLOW = 0,
	SEG_DROP = 1,
	SEG_COUNT_ONLY = 2,
};

struct srv6_config {
	__u8 max_segments;
	bool enforce;
};

struct srv6_config srv6 SEC(".data.srv6") = {
	.max_segments = 8,
	.enforce = true,
};

/* RFC 8754 SRH as the .ks declares it: room for MAX_SEGMENTS segments */
struct Srh {
	__u8 next_header;
	__u8 hdr_ext_len;
	__u8 routing_type;
	__u8 segments_left;
	__u8 last_entry;
	__u8 flags;
	__u16 tag;
	struct in6_addr segments[MAX_SEGMENTS];
};

struct SegKey {
	__u32 prefixlen;
	struct in6_addr addr;
};

struct ActionStats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct SegKey);
	__type(value, __u32);
} seg_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct ActionStats);
} action_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} srh_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} traffic SEC(".maps");

/* per-CPU slots: no other CPU writes them, plain increments suffice */
static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

static __always_inline void book(__u32 action, __u64 bytes)
{
	struct ActionStats *s = bpf_map_lookup_elem(&action_stats, &action);

	if (s) {
		s->packets += 1;
		s->bytes += bytes;
	}
}

/* Index of the active segment, NOT_SRH for a routing header that is not an SRH, or minus
 * the reason the SRH is malformed. */
static __always_inline int srh_active_index(void *data, void *data_end, struct ipv6hdr *ip6)
{
	struct Srh *srh = data + SRH_OFF;
	__u32 seg_left, last_entry, hdr_bytes;

	if ((void *)srh + SRH_FIXED > data_end)
		return -E_SRH_SHORT;
	if (srh->routing_type != ROUTING_TYPE_SRH)
		return NOT_SRH;
	seg_left = srh->segments_left;
	last_entry = srh->last_entry;
	hdr_bytes = (srh->hdr_ext_len + 1) * 8;
	if (seg_left > last_entry)
		return -E_SEGMENTS_LEFT;
	if (last_entry >= srv6.max_segments)
		return -E_TOO_MANY;
	if (srh->hdr_ext_len < (last_entry + 1) * 2 || bpf_ntohs(ip6->payload_len) < hdr_bytes)
		return -E_LENGTH;
	if ((void *)srh + hdr_bytes > data_end)
		return -E_SRH_SHORT;
	return seg_left;
}

SEC("xdp")
int srv6_policy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	struct in6_addr *seg;
	struct Srh *srh;
	struct SegKey key;
	__u64 len;
	__u32 *action, idx, reason;
	int ret;

	if ((void *)(eth + 1) > data_end) {
		count(&traffic, T_NOT_IP);
		return XDP_PASS;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		count(&traffic, T_IPV4);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
		count(&traffic, T_NOT_IP);
		return XDP_PASS;
	}

	if ((void *)(ip6 + 1) > data_end) {
		reason = E_IPV6_SHORT;
		goto malformed;
	}
	if (ip6->nexthdr != NEXTHDR_ROUTING) {
		count(&traffic, T_IPV6_PLAIN);
		return XDP_PASS;
	}
	ret = srh_active_index(data, data_end, ip6);
	if (ret < 0) {
		reason = -ret;
		goto malformed;
	}
	if (ret == NOT_SRH) {
		count(&traffic, T_OTHER_ROUTING);
		return XDP_PASS;
	}

	/* segments[] holds MAX_SEGMENTS: a larger index (max_segments raised past it) is the
	 * .ks index abort, which passes; the packet test is for the verifier (the SRH was
	 * validated to be in the frame) */
	idx = ret;
	if (idx >= MAX_SEGMENTS)
		return XDP_PASS;
	srh = data + SRH_OFF;
	seg = &srh->segments[idx];
	if ((void *)(seg + 1) > data_end)
		return XDP_PASS;
	key.prefixlen = 128;
	key.addr = *seg;
	action = bpf_map_lookup_elem(&seg_policy, &key);
	if (!action) {
		count(&traffic, T_UNMATCHED);
		return XDP_PASS;
	}
	len = data_end - data;
	switch (*action) {
	case SEG_ALLOW:
		book(SEG_ALLOW, len);
		return XDP_PASS;
	case SEG_DROP:
		book(SEG_DROP, len);
		return srv6.enforce ? XDP_DROP : XDP_PASS;
	case SEG_COUNT_ONLY:
		book(SEG_COUNT_ONLY, len);
		return XDP_PASS;
	default:
		count(&traffic, T_BAD_ACTION);
		return XDP_PASS;
	}

malformed:
	count(&srh_errors, reason);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
