// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind13_tc_stp_bpdu_guard.ks: tc ingress BPDU guard.
 * 802.3 frames with LLC DSAP/SSAP 0x42 are STP BPDUs: counted per type, malformed ones
 * (protocol id != 0, unknown type, cut short) dropped; with bpdu_guard, BPDUs from senders not
 * in trusted_bridges are dropped and counted per sender MAC; trusted BPDUs are dropped for a
 * topology change (block_tc) or a root priority below root_floor. LLDP and CDP (SNAP OUI
 * 00000c, PID 0x2000) are counted; everything else passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ETH_P_LLDP 0x88CC
#define ETH_P_802_3_MIN 0x0600
#define LLC_STP_SAP 0x42
#define LLC_SNAP_SAP 0xAA
#define LLC_UI 0x03
#define OUI_CISCO 0x00000C
#define CDP_PID 0x2000

#define BPDU_CONFIG 0x00
#define BPDU_RST 0x02
#define BPDU_TCN 0x80
#define BPDU_FLAG_TC 0x01
#define BPDU_FLAG_TC_ACK 0x80

enum {
	L2_STP = 0,
	L2_LLDP = 1,
	L2_CDP = 2,
	L2_OTHER_LLC = 3,
};

enum {
	REASON_GUARD = 0,
	REASON_TOPOLOGY = 1,
	REASON_ROOT = 2,
	REASON_MALFORMED = 3,
};

/* config stp_guard { bpdu_guard: bool, block_tc: bool, root_floor: u16 } */
struct stp_guard_config {
	bool bpdu_guard;
	bool block_tc;
	__u16 root_floor;
};

struct stp_guard_config stp_guard SEC(".data.stp_guard") = {
	.bpdu_guard = true,
	.block_tc = false,
	.root_floor = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} l2_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} bpdu_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drop_reasons SEC(".maps");

/* sender MAC (48-bit number) -> 1 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} trusted_bridges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} guard_hits SEC(".maps");

/* .bss, in declaration order */
__u64 frames_8023 = 0;
__u64 truncated = 0;
__u64 malformed = 0;
__u64 topology_changes = 0;
__u64 tc_acks = 0;
__u64 superior_roots = 0;
__u64 dropped = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val)
		__sync_fetch_and_add(val, 1);
}

/* m[k] += 1 on a hash map: atomic add, or insert when missing */
static __always_inline void hash_inc(void *map, void *key)
{
	__u64 one = 1, *val = bpf_map_lookup_elem(map, key);

	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	if (!bpf_map_update_elem(map, key, &one, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, key);
	if (val)
		__sync_fetch_and_add(val, 1);
}

static __always_inline int drop_bpdu(__u32 reason)
{
	array_inc(&drop_reasons, reason);
	__sync_fetch_and_add(&dropped, 1);
	return TC_ACT_SHOT;
}

SEC("tcx/ingress")
int stp_bpdu_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 *llc, *bpdu;
	__u16 type_len;
	__u32 kind, root_priority;
	__u64 sender;
	__u8 flags;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	type_len = bpf_ntohs(eth->h_proto);
	if (type_len == ETH_P_LLDP) {
		array_inc(&l2_frames, L2_LLDP);
		return TC_ACT_OK;
	}
	if (type_len >= ETH_P_802_3_MIN)
		return TC_ACT_OK;
	__sync_fetch_and_add(&frames_8023, 1);

	llc = (void *)(eth + 1);
	if ((void *)(llc + 3) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return TC_ACT_OK;
	}
	if (llc[0] == LLC_SNAP_SAP && llc[1] == LLC_SNAP_SAP && llc[2] == LLC_UI) {
		__u32 oui, pid;

		if ((void *)(llc + 8) > data_end) {
			__sync_fetch_and_add(&truncated, 1);
			return TC_ACT_OK;
		}
		oui = llc[3] << 16 | llc[4] << 8 | llc[5];
		pid = llc[6] << 8 | llc[7];
		if (oui == OUI_CISCO && pid == CDP_PID)
			array_inc(&l2_frames, L2_CDP);
		else
			array_inc(&l2_frames, L2_OTHER_LLC);
		return TC_ACT_OK;
	}
	if (llc[0] != LLC_STP_SAP || llc[1] != LLC_STP_SAP) {
		array_inc(&l2_frames, L2_OTHER_LLC);
		return TC_ACT_OK;
	}

	/* a BPDU */
	array_inc(&l2_frames, L2_STP);
	bpdu = llc + 3;
	if ((void *)(bpdu + 4) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return drop_bpdu(REASON_MALFORMED);
	}
	kind = bpdu[3];
	if (bpdu[0] != 0 || bpdu[1] != 0) {
		__sync_fetch_and_add(&malformed, 1);
		return drop_bpdu(REASON_MALFORMED);
	}
	hash_inc(&bpdu_types, &kind);

	sender = (__u64)eth->h_source[0] << 40 | (__u64)eth->h_source[1] << 32 |
		 (__u64)eth->h_source[2] << 24 | (__u64)eth->h_source[3] << 16 |
		 (__u64)eth->h_source[4] << 8 | eth->h_source[5];
	if (stp_guard.bpdu_guard && !bpf_map_lookup_elem(&trusted_bridges, &sender)) {
		hash_inc(&guard_hits, &sender);
		return drop_bpdu(REASON_GUARD);
	}

	if (kind == BPDU_TCN) {
		__sync_fetch_and_add(&topology_changes, 1);
		if (stp_guard.block_tc)
			return drop_bpdu(REASON_TOPOLOGY);
		return TC_ACT_OK;
	}
	if (kind != BPDU_CONFIG && kind != BPDU_RST) {
		__sync_fetch_and_add(&malformed, 1);
		return drop_bpdu(REASON_MALFORMED);
	}
	/* flags, root identifier, root path cost, bridge identifier, port, four timers */
	if ((void *)(bpdu + 35) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return drop_bpdu(REASON_MALFORMED);
	}
	flags = bpdu[4];
	if (flags & BPDU_FLAG_TC_ACK)
		__sync_fetch_and_add(&tc_acks, 1);
	if (flags & BPDU_FLAG_TC) {
		__sync_fetch_and_add(&topology_changes, 1);
		if (stp_guard.block_tc)
			return drop_bpdu(REASON_TOPOLOGY);
	}
	/* the priority is the top 4 bits of the root identifier's first two bytes */
	root_priority = (bpdu[5] << 8 | bpdu[6]) & 0xF000;
	if (stp_guard.root_floor != 0 && root_priority < stp_guard.root_floor) {
		__sync_fetch_and_add(&superior_roots, 1);
		return drop_bpdu(REASON_ROOT);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
