// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_tc_rate_meter.ks: tc ingress token bucket (bytes) per TCP,
 * UDP or SCTP destination port in an LRU hash; time in ticks of meter.tick_ns, refill of
 * bytes_per_tick per tick capped at burst_bytes; new buckets start full; packets longer than
 * the tokens left are counted and (enforce) dropped. .bss: exceeding_bytes@0. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum {
	MS_NOT_IPV4 = 0,
	MS_TRUNCATED = 1,
	MS_UNMETERED = 2,
	MS_NEW_BUCKET = 3,
	MS_CONFORMING = 4,
	MS_EXCEEDING = 5,
};

struct meter_config {
	__u64 tick_ns;
	__u64 bytes_per_tick;
	__u64 burst_bytes;
	bool enforce;
};

struct meter_config meter SEC(".data.meter") = {
	.tick_ns = 1000000,
	.bytes_per_tick = 1250,
	.burst_bytes = 64000,
	.enforce = true,
};

struct Bucket {
	__u64 tokens;
	__u64 last_tick_ns;
	__u32 conforming;
	__u32 exceeding;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct Bucket);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} meter_stats SEC(".maps");

__u64 exceeding_bytes = 0;

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&meter_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u64 refill(__u64 tokens, __u64 last_ns, __u64 now_ns)
{
	__u64 filled;

	if (now_ns <= last_ns)
		return tokens;
	filled = tokens + (now_ns - last_ns) / meter.tick_ns * meter.bytes_per_tick;
	return filled > meter.burst_bytes ? meter.burst_bytes : filled;
}

SEC("tcx/ingress")
int rate_meter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct Bucket *b;
	__u64 len, tick, now;
	__u16 port;
	__u8 *l4;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(MS_NOT_IPV4);
		return TC_ACT_OK;
	}
	if ((void *)(ip + 1) > data_end) {
		count(MS_TRUNCATED);
		return TC_ACT_SHOT;
	}
	l4 = (void *)ip + ip->ihl * 4;
	if (ip->ihl < 5 || (void *)(l4 + 4) > data_end) {
		count(MS_TRUNCATED);
		return TC_ACT_SHOT;
	}

	switch (ip->protocol) {
	case IPPROTO_TCP:
		port = bpf_ntohs(((struct tcphdr *)l4)->dest);
		break;
	case IPPROTO_UDP:
		port = bpf_ntohs(((struct udphdr *)l4)->dest);
		break;
	case IPPROTO_SCTP:
		port = l4[2] << 8 | l4[3];
		break;
	default: /* ICMP and the rest */
		port = 0;
		break;
	}
	if (!port) {
		count(MS_UNMETERED);
		return TC_ACT_OK;
	}

	len = skb->len;
	tick = meter.tick_ns;
	now = bpf_ktime_get_ns() / tick * tick;
	b = bpf_map_lookup_elem(&buckets, &port);
	if (!b) {
		struct Bucket init = {
			.tokens = meter.burst_bytes,
			.last_tick_ns = now,
		};

		bpf_map_update_elem(&buckets, &port, &init, BPF_ANY);
		count(MS_NEW_BUCKET);
		b = bpf_map_lookup_elem(&buckets, &port);
		if (!b)
			return TC_ACT_OK;
	}
	b->tokens = refill(b->tokens, b->last_tick_ns, now);
	b->last_tick_ns = now;
	if (b->tokens < len) {
		b->exceeding += 1;
		count(MS_EXCEEDING);
		__sync_fetch_and_add(&exceeding_bytes, len);
		return meter.enforce ? TC_ACT_SHOT : TC_ACT_OK;
	}
	b->tokens -= len;
	b->conforming += 1;
	count(MS_CONFORMING);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
