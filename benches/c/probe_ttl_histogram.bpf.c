// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_ttl_histogram.ks: IPv4 TTLs in 8 log2
 * buckets, per-protocol packet/byte totals and per-class counters on tc ingress; optionally
 * drops packets arriving with TTL 0 or 1. Every frame is counted in frames_seen. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TTL_BUCKETS 8

enum ProtoClass { CLASS_ICMP = 0, CLASS_TCP = 1, CLASS_UDP = 2, CLASS_OTHER = 3, CLASS_MAX };

struct ProtoTotals {
	__u64 packets;
	__u64 bytes;
};

/* config ttl_watch { drop_expiring: bool = false } */
struct ttl_watch_config {
	bool drop_expiring;
};

struct ttl_watch_config ttl_watch SEC(".data.ttl_watch") = {
	.drop_expiring = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TTL_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} ttl_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8);
	__type(value, struct ProtoTotals);
} proto_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} class_packets SEC(".maps");

/* .bss, in declaration order */
__u64 frames_seen = 0;
__u64 ipv4_packets = 0;
__u64 expiring_dropped = 0;

/* position of the highest set bit; 0 for 0 and 1 (the .ks's loop over the shifts) */
static __always_inline __u32 ttl_bucket(__u8 ttl)
{
	__u32 bucket = 0;
	int b;

#pragma unroll
	for (b = 1; b < TTL_BUCKETS; b++)
		if (ttl >> b)
			bucket = b;
	return bucket;
}

static __always_inline __u32 classify(__u8 proto)
{
	switch (proto) {
	case IPPROTO_ICMP:
		return CLASS_ICMP;
	case IPPROTO_TCP:
		return CLASS_TCP;
	case IPPROTO_UDP:
		return CLASS_UDP;
	default:
		return CLASS_OTHER;
	}
}

SEC("tcx/ingress")
int ttl_histogram(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct ProtoTotals *t;
	__u32 idx;
	__u64 len, *v;
	__u8 ttl, proto;

	__sync_fetch_and_add(&frames_seen, 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4)
		return TC_ACT_OK;
	__sync_fetch_and_add(&ipv4_packets, 1);

	ttl = ip->ttl;
	idx = ttl_bucket(ttl);
	v = bpf_map_lookup_elem(&ttl_hist, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);

	proto = ip->protocol;
	len = skb->len;
	t = bpf_map_lookup_elem(&proto_totals, &proto);
	if (t) {
		t->packets += 1;
		t->bytes += len;
	} else {
		struct ProtoTotals init = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&proto_totals, &proto, &init, BPF_ANY);
	}

	/* per-CPU slot: plain add */
	idx = classify(proto);
	v = bpf_map_lookup_elem(&class_packets, &idx);
	if (v)
		*v += 1;

	if (ttl <= 1 && ttl_watch.drop_expiring) {
		__sync_fetch_and_add(&expiring_dropped, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
