// SPDX-License-Identifier: GPL-2.0
/* blind14_xdp_lacp_marker.bpf.c — C twin of blind14_xdp_lacp_marker.ks:
 * count IEEE 802.3 Slow Protocols frames (LACP / Marker) per partner in XDP.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_SLOW      0x8809
#define SUBTYPE_LACP    1
#define SUBTYPE_MARKER  2
#define LACPDU_LEN      110
#define TLV_ACTOR       1
#define ACTOR_INFO_LEN  20
#define STATE_SYNC      0x08

/* LACPDU up to the actor state; naturally aligned on the wire, so no padding. */
struct lacp_actor {
	__u8  subtype;
	__u8  version;
	__u8  tlv_type;
	__u8  tlv_len;
	__u16 sys_prio;
	__u8  sys_mac[6];
	__u16 key;
	__u16 port_prio;
	__u16 port;
	__u8  state;
};
_Static_assert(__builtin_offsetof(struct lacp_actor, state) == 18, "LACPDU layout");

struct marker_hdr {
	__u8  subtype;
	__u8  version;
	__u8  tlv_type;
	__u8  tlv_len;
	__u16 req_port;
	__u8  req_sys[6];
};

struct peer_key {
	__u32 ifindex;
	__u8  mac[6];
	__u16 pad;
};

struct peer_stats {
	__u64 lacpdus;
	__u64 markers;
	__u16 last_key;
	__u8  last_state;
	__u32 flaps;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct peer_key);
	__type(value, struct peer_stats);
} lacp_peers SEC(".maps");

__u64 lacp_frames = 0;
__u64 marker_frames = 0;
__u64 malformed_frames = 0;
__u64 other_slow_frames = 0;

static __always_inline void peer_insert(struct peer_key *key, __u64 lacpdus, __u64 markers,
					__u16 last_key, __u8 last_state)
{
	struct peer_stats init;

	__builtin_memset(&init, 0, sizeof(init));
	init.lacpdus = lacpdus;
	init.markers = markers;
	init.last_key = last_key;
	init.last_state = last_state;
	bpf_map_update_elem(&lacp_peers, key, &init, BPF_ANY);
}

SEC("xdp")
int lacp_watch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct peer_stats *st;
	struct peer_key key;
	__u8 subtype;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_SLOW))
		return XDP_PASS;
	if (data + 15 > data_end)
		goto malformed;
	subtype = *(__u8 *)(data + 14);

	if (subtype == SUBTYPE_LACP) {
		struct lacp_actor *pdu = data + 14;
		__u16 actor_key;
		__u8 state;

		if (data + 14 + LACPDU_LEN > data_end)
			goto malformed;
		if (pdu->version != 1 || pdu->tlv_type != TLV_ACTOR || pdu->tlv_len != ACTOR_INFO_LEN)
			goto malformed;
		__sync_fetch_and_add(&lacp_frames, 1);

		key.ifindex = ctx->ingress_ifindex;
		__builtin_memcpy(key.mac, pdu->sys_mac, 6);
		key.pad = 0;
		state = pdu->state;
		actor_key = bpf_ntohs(pdu->key);

		st = bpf_map_lookup_elem(&lacp_peers, &key);
		if (!st) {
			peer_insert(&key, 1, 0, actor_key, state);
		} else {
			if (st->lacpdus > 0 && ((st->last_state ^ state) & STATE_SYNC))
				__sync_fetch_and_add(&st->flaps, 1);
			__sync_fetch_and_add(&st->lacpdus, 1);
			st->last_key = actor_key;
			st->last_state = state;
		}
		return XDP_PASS;
	}

	if (subtype == SUBTYPE_MARKER) {
		struct marker_hdr *mk = data + 14;

		if ((void *)(mk + 1) > data_end)
			goto malformed;
		__sync_fetch_and_add(&marker_frames, 1);

		key.ifindex = ctx->ingress_ifindex;
		__builtin_memcpy(key.mac, mk->req_sys, 6);
		key.pad = 0;

		st = bpf_map_lookup_elem(&lacp_peers, &key);
		if (!st)
			peer_insert(&key, 0, 1, 0, 0);
		else
			__sync_fetch_and_add(&st->markers, 1);
		return XDP_PASS;
	}

	__sync_fetch_and_add(&other_slow_frames, 1);
	return XDP_PASS;

malformed:
	__sync_fetch_and_add(&malformed_frames, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
