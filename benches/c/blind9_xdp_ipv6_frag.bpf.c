// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_xdp_ipv6_frag.ks: walks up to 4 hop-by-hop/routing/
 * destination-options headers to the IPv6 fragment header, classifies fragments (atomic, first,
 * middle, last) in a per-CPU array, drops tiny first fragments (frag_policy.drop_tiny) and
 * sums each datagram's fragments in an LRU hash keyed by {identification, last source word}. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define MAX_EXT_HDRS 4

enum {
	FS_UNFRAGMENTED = 0,
	FS_ATOMIC = 1,
	FS_FIRST = 2,
	FS_MIDDLE = 3,
	FS_LAST = 4,
	FS_TINY_FIRST = 5,
	FS_MALFORMED = 6,
	FS_CHAIN_TOO_LONG = 7,
};

struct frag_policy_config {
	__u32 min_first_bytes;
	bool drop_tiny;
	bool drop_atomic;
};

struct frag_policy_config frag_policy SEC(".data.frag_policy") = {
	.min_first_bytes = 64,
	.drop_tiny = true,
	.drop_atomic = false,
};

struct FragKey {
	__u32 id;
	__u32 src_tail;
};

struct FragState {
	__u32 fragments;
	__u32 bytes;
	bool seen_first;
	bool seen_last;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} frag_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct FragKey);
	__type(value, struct FragState);
} datagrams SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&frag_stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool is_opt_hdr(__u8 nh)
{
	return nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST;
}

SEC("xdp")
int ipv6_frag(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct ipv6_opt_hdr *opt;
	struct frag_hdr *fh;
	struct FragKey key;
	struct FragState *st;
	__u32 off = sizeof(*eth) + sizeof(*ip6), headers, payload_len, frag_bytes, kind;
	__u16 fo, offset;
	bool more;
	__u8 nexthdr;
	int i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((void *)(ip6 + 1) > data_end) {
		count(FS_MALFORMED);
		return XDP_DROP;
	}

	nexthdr = ip6->nexthdr;
#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		if (!is_opt_hdr(nexthdr))
			break;
		opt = data + off;
		if ((void *)opt + 8 > data_end) {
			count(FS_MALFORMED);
			return XDP_DROP;
		}
		nexthdr = opt->nexthdr;
		off += (opt->hdrlen + 1) * 8;
	}

	if (nexthdr != NEXTHDR_FRAGMENT) {
		if (is_opt_hdr(nexthdr)) {
			count(FS_CHAIN_TOO_LONG);
			return XDP_DROP;
		}
		count(FS_UNFRAGMENTED);
		return XDP_PASS;
	}

	fh = data + off;
	if ((void *)(fh + 1) > data_end) {
		count(FS_MALFORMED);
		return XDP_DROP;
	}
	headers = off + sizeof(*fh) - (sizeof(*eth) + sizeof(*ip6));
	payload_len = bpf_ntohs(ip6->payload_len);
	if (payload_len < headers) {
		count(FS_MALFORMED);
		return XDP_DROP;
	}
	frag_bytes = payload_len - headers;
	fo = bpf_ntohs(fh->frag_off);
	offset = fo & 0xfff8;
	more = fo & 1;

	if (offset == 0 && !more) {
		count(FS_ATOMIC);
		return frag_policy.drop_atomic ? XDP_DROP : XDP_PASS;
	}

	if (offset == 0) {
		kind = FS_FIRST;
		if (frag_bytes < frag_policy.min_first_bytes) {
			count(FS_TINY_FIRST);
			if (frag_policy.drop_tiny)
				return XDP_DROP;
		}
	} else if (more) {
		kind = FS_MIDDLE;
	} else {
		kind = FS_LAST;
	}
	count(kind);

	key.id = fh->identification;
	key.src_tail = ip6->saddr.in6_u.u6_addr32[3];
	st = bpf_map_lookup_elem(&datagrams, &key);
	if (!st) {
		struct FragState init;

		__builtin_memset(&init, 0, sizeof(init));
		init.fragments = 1;
		init.bytes = frag_bytes;
		init.seen_first = kind == FS_FIRST;
		init.seen_last = kind == FS_LAST;
		bpf_map_update_elem(&datagrams, &key, &init, BPF_ANY);
	} else {
		st->fragments += 1;
		st->bytes += frag_bytes;
		if (kind == FS_FIRST)
			st->seen_first = true;
		if (kind == FS_LAST)
			st->seen_last = true;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
