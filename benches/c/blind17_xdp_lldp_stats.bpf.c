// SPDX-License-Identifier: GPL-2.0
/* LLDP neighbour census at XDP (hand-written twin of blind17_xdp_lldp_stats.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_LLDP	0x88cc
#define MAX_TLVS	16

#define TLV_END		0
#define TLV_CHASSIS_ID	1
#define TLV_TTL		3

struct mac_key {
	__u8 addr[6];
};

struct lldp_neighbor {
	__u16 chassis_len;
	__u16 ttl;
	__u32 tlv_count;
	__u64 frames;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} tlv_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct mac_key);
	__type(value, struct lldp_neighbor);
} neighbors SEC(".maps");

__u64 lldp_frames = 0;
__u64 lldp_malformed = 0;
__u64 lldp_unterminated = 0;

SEC("xdp")
int blind17_xdp_lldp_stats(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 chassis_len = 0, ttl = 0;
	bool have_ttl = false, terminated = false;
	__u32 off = 14, tlvs = 0;

	if ((void *)(data + 14) > data_end)
		return XDP_PASS;
	if (((data[12] << 8) | data[13]) != ETH_P_LLDP)
		return XDP_PASS;

	for (int i = 0; i < MAX_TLVS; i++) {
		__u8 *tlv = data + off;
		__u32 hdr, type, len;
		__u64 *cnt;

		if ((void *)(tlv + 2) > data_end)
			goto malformed;
		hdr = (tlv[0] << 8) | tlv[1];
		type = hdr >> 9;
		len = hdr & 0x1ff;

		cnt = bpf_map_lookup_elem(&tlv_types, &type);
		if (cnt)
			*cnt += 1;
		tlvs++;

		if (type == TLV_END) {
			terminated = true;
			break;
		}
		if ((void *)(tlv + 2 + len) > data_end)
			goto malformed;
		if (type == TLV_CHASSIS_ID)
			chassis_len = len;
		if (type == TLV_TTL) {
			if (len < 2 || (void *)(tlv + 4) > data_end)
				goto malformed;
			ttl = (tlv[2] << 8) | tlv[3];
			have_ttl = true;
		}
		off += 2 + len;
	}

	if (!terminated) {
		__sync_fetch_and_add(&lldp_unterminated, 1);
		return XDP_PASS;
	}
	if (chassis_len == 0 || !have_ttl)
		goto malformed;
	__sync_fetch_and_add(&lldp_frames, 1);

	struct mac_key key;
	__builtin_memcpy(key.addr, data + 6, 6);

	struct lldp_neighbor *n = bpf_map_lookup_elem(&neighbors, &key);
	if (!n) {
		struct lldp_neighbor fresh = {
			.chassis_len = chassis_len,
			.ttl = ttl,
			.tlv_count = tlvs,
			.frames = 1,
		};
		bpf_map_update_elem(&neighbors, &key, &fresh, BPF_ANY);
	} else {
		n->chassis_len = chassis_len;
		n->ttl = ttl;
		n->tlv_count = tlvs;
		n->frames += 1;
	}
	return XDP_PASS;

malformed:
	__sync_fetch_and_add(&lldp_malformed, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
