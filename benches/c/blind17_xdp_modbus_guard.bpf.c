// SPDX-License-Identifier: GPL-2.0
/* Modbus/TCP function-code guard at XDP (hand-written twin of blind17_xdp_modbus_guard.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define MODBUS_PORT	502
#define MBAP_LEN	7

enum fc_class {
	FC_READ,
	FC_WRITE,
	FC_OTHER,
};

struct unit_stats {
	__u64 requests;
	__u64 reads;
	__u64 writes_allowed;
	__u64 writes_denied;
	__u64 other;
};

struct modbus_config {
	__u16 max_pdu_len;
	__u32 write_allow_mask;	/* bit n set: write function n allowed */
	bool drop_unknown;
};

struct modbus_config modbus SEC(".data.modbus") = {
	.max_pdu_len = 253,
	.write_allow_mask = 0x40,
	.drop_unknown = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct unit_stats);
} unit_stats SEC(".maps");

__u64 mb_truncated = 0;
__u64 mb_bad_protocol = 0;
__u64 mb_bad_length = 0;

static __always_inline enum fc_class classify(__u32 fc)
{
	switch (fc) {
	case 1:		/* read coils */
	case 2:		/* read discrete inputs */
	case 3:		/* read holding registers */
	case 4:		/* read input registers */
	case 20:	/* read file record */
	case 24:	/* read FIFO queue */
	case 43:	/* encapsulated interface (device identification) */
		return FC_READ;
	case 5:		/* write single coil */
	case 6:		/* write single register */
	case 15:	/* write multiple coils */
	case 16:	/* write multiple registers */
	case 22:	/* mask write register */
	case 23:	/* read/write multiple registers */
		return FC_WRITE;
	default:
		return FC_OTHER;
	}
}

SEC("xdp")
int blind17_xdp_modbus_guard(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ihl, doff, length, unit, fc;
	struct unit_stats *st;
	__u8 *tcp, *adu;

	if ((void *)(data + 34) > data_end)
		return XDP_PASS;
	if (((data[12] << 8) | data[13]) != ETH_P_IP)
		return XDP_PASS;
	if (data[23] != IPPROTO_TCP)
		return XDP_PASS;
	ihl = (data[14] & 0x0f) * 4;
	if (ihl < 20)
		return XDP_PASS;
	tcp = data + 14 + ihl;
	if ((void *)(tcp + 20) > data_end)
		return XDP_PASS;
	if (((tcp[2] << 8) | tcp[3]) != MODBUS_PORT)
		return XDP_PASS;
	doff = (tcp[12] >> 4) * 4;
	if (doff < 20)
		goto truncated;

	adu = tcp + doff;
	if ((void *)adu >= data_end)
		return XDP_PASS;	/* no payload: handshake, ACK, FIN */
	if ((void *)(adu + MBAP_LEN + 1) > data_end)
		goto truncated;
	if (((adu[2] << 8) | adu[3]) != 0)
		goto bad_protocol;
	length = (adu[4] << 8) | adu[5];
	if (length < 2 || length - 1 > modbus.max_pdu_len)
		goto bad_length;
	if ((void *)(adu + 6 + length) > data_end)
		goto truncated;
	unit = adu[6];
	fc = adu[7];

	st = bpf_map_lookup_elem(&unit_stats, &unit);
	if (!st) {
		struct unit_stats zero = {};

		bpf_map_update_elem(&unit_stats, &unit, &zero, BPF_ANY);
		st = bpf_map_lookup_elem(&unit_stats, &unit);
		if (!st)
			return XDP_PASS;
	}
	st->requests++;

	switch (classify(fc)) {
	case FC_READ:
		st->reads++;
		return XDP_PASS;
	case FC_WRITE:
		if (modbus.write_allow_mask & (1U << fc)) {
			st->writes_allowed++;
			return XDP_PASS;
		}
		st->writes_denied++;
		return XDP_DROP;
	default:
		st->other++;
		return modbus.drop_unknown ? XDP_DROP : XDP_PASS;
	}

truncated:
	__sync_fetch_and_add(&mb_truncated, 1);
	return XDP_DROP;
bad_protocol:
	__sync_fetch_and_add(&mb_bad_protocol, 1);
	return XDP_DROP;
bad_length:
	__sync_fetch_and_add(&mb_bad_length, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
