// SPDX-License-Identifier: GPL-2.0
// blind15_tc_ringbuf_flows.bpf.c — C twin of blind15_tc_ringbuf_flows.ks:
// TC ingress per-source IPv4 byte meter emitting a ring-buffer event when a
// source first reaches the configured byte threshold. Always TC_ACT_OK.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0

struct src_stats {
	__u64 bytes;
	__u64 packets;
	bool reported;
};

struct flow_event {
	__u32 src;
	__u64 bytes;
	__u64 packets;
	__u8 proto;
};

struct meter_config {
	__u64 threshold;
	__u8 only_proto;
};

struct meter_config meter SEC(".data.meter") = {
	.threshold = 1048576,
	.only_proto = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct src_stats);
} src_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 262144);
} events SEC(".maps");

__u64 new_sources = 0;
__u64 events_sent = 0;
__u64 reserve_failures = 0;
__u64 skipped = 0;
__u64 not_ipv4 = 0;
__u64 short_frames = 0;

static __always_inline void report(__u32 src, __u64 bytes, __u64 packets, __u8 proto)
{
	struct flow_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		__sync_fetch_and_add(&reserve_failures, 1);
		return;
	}
	ev->src = src;
	ev->bytes = bytes;
	ev->packets = packets;
	ev->proto = proto;
	bpf_ringbuf_submit(ev, 0);
	__sync_fetch_and_add(&events_sent, 1);
}

SEC("tcx/ingress")
int ringbuf_flows(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct src_stats *st;
	__u64 len;
	__u32 src;
	__u8 proto;

	if ((void *)(eth + 1) > data_end) {
		__sync_fetch_and_add(&short_frames, 1);
		return TC_ACT_OK;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&not_ipv4, 1);
		return TC_ACT_OK;
	}
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&short_frames, 1);
		return TC_ACT_OK;
	}
	proto = ip->protocol;
	if (meter.only_proto && proto != meter.only_proto) {
		__sync_fetch_and_add(&skipped, 1);
		return TC_ACT_OK;
	}
	src = ip->saddr;
	len = skb->len;

	st = bpf_map_lookup_elem(&src_stats, &src);
	if (!st) {
		struct src_stats ns;
		bool crossed = len >= meter.threshold;

		__builtin_memset(&ns, 0, sizeof(ns));
		ns.bytes = len;
		ns.packets = 1;
		ns.reported = crossed;
		bpf_map_update_elem(&src_stats, &src, &ns, BPF_ANY);
		__sync_fetch_and_add(&new_sources, 1);
		if (crossed)
			report(src, len, 1, proto);
		return TC_ACT_OK;
	}

	st->bytes += len;
	st->packets += 1;
	if (!st->reported && st->bytes >= meter.threshold) {
		st->reported = true;
		report(src, st->bytes, st->packets, proto);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
