// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_xdp_ipv6_ext_walk.ks: walks at most 8 IPv6 extension headers
 * (hop-by-hop, routing, fragment, destination options) to the upper-layer protocol, counts
 * packets per final next header and per chain length, drops type 0 routing headers (reported
 * on a ring buffer), over-long chains and truncated headers. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define MAX_EXT_HDRS 8

struct Rh0Event {
	__u64 saddr_hi;
	__u64 saddr_lo;
	__u8 routing_type;
	__u8 segments_left;
	__u8 depth;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8);
	__type(value, __u64);
} upper_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_EXT_HDRS + 1);
	__type(key, __u32);
	__type(value, __u64);
} walk_lengths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} rh0_events SEC(".maps");

/* .bss, in declaration order */
__u64 rh0_dropped = 0;
__u64 too_long_dropped = 0;
__u64 truncated_dropped = 0;
__u64 events_lost = 0;

static __always_inline bool is_ext_header(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING ||
	       nexthdr == NEXTHDR_FRAGMENT || nexthdr == NEXTHDR_DEST;
}

SEC("xdp")
int ipv6_ext_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	void *cur = ip6 + 1;
	__u32 walked = 0;
	__u64 *cnt, one = 1;
	__u8 nexthdr;
	int i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((void *)(ip6 + 1) > data_end)
		goto truncated;

	nexthdr = ip6->nexthdr;
#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		struct ipv6_rt_hdr *ext = cur;

		if (!is_ext_header(nexthdr))
			break;
		/* every extension header is at least 8 bytes long */
		if (cur + 8 > data_end)
			goto truncated;
		if (nexthdr == NEXTHDR_ROUTING && ext->type == 0) {
			struct Rh0Event *ev = bpf_ringbuf_reserve(&rh0_events, sizeof(*ev), 0);

			if (ev) {
				const __u64 *saddr = (const __u64 *)&ip6->saddr;

				ev->saddr_hi = saddr[0];
				ev->saddr_lo = saddr[1];
				ev->routing_type = ext->type;
				ev->segments_left = ext->segments_left;
				ev->depth = i;
				bpf_ringbuf_submit(ev, 0);
			} else {
				__sync_fetch_and_add(&events_lost, 1);
			}
			__sync_fetch_and_add(&rh0_dropped, 1);
			return XDP_DROP;
		}
		cur += nexthdr == NEXTHDR_FRAGMENT ? 8 : (ext->hdrlen + 1) * 8;
		nexthdr = ext->nexthdr;
		walked++;
	}
	if (is_ext_header(nexthdr)) {
		/* still an extension header after MAX_EXT_HDRS of them */
		__sync_fetch_and_add(&too_long_dropped, 1);
		return XDP_DROP;
	}

	cnt = bpf_map_lookup_elem(&upper_protos, &nexthdr);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&upper_protos, &nexthdr, &one, BPF_NOEXIST)) {
		/* another CPU created it first */
		cnt = bpf_map_lookup_elem(&upper_protos, &nexthdr);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	cnt = bpf_map_lookup_elem(&walk_lengths, &walked);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_PASS;

truncated:
	__sync_fetch_and_add(&truncated_dropped, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
