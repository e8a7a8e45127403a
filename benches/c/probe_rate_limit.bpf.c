// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_rate_limit.ks: a token bucket per IPv4 source
 * address in an LRU hash; packets of a source with an empty bucket are dropped and counted. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

struct Bucket {
	__u64 tokens;
	__u64 last_ns;	/* when the bucket was last refilled */
};

/* config limiter { ns_per_token: u64 = 1_000_000, burst: u64 = 64 } */
struct limiter_config {
	__u64 ns_per_token;
	__u64 burst;
};

struct limiter_config limiter SEC(".data.limiter") = {
	.ns_per_token = 1000000,
	.burst = 64,
};

/* source address (network byte order) -> bucket */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct Bucket);
} buckets SEC(".maps");

/* source address -> packets dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

__u64 passed = 0;
__u64 limited = 0;

SEC("xdp")
int rate_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct Bucket *b;
	__u64 now, burst, *cnt, one = 1;
	__u32 src;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	src = ip->saddr;
	now = bpf_ktime_get_ns();
	burst = limiter.burst;

	b = bpf_map_lookup_elem(&buckets, &src);
	if (b) {
		if (now > b->last_ns) {
			__u64 t = b->tokens + (now - b->last_ns) / limiter.ns_per_token;

			b->tokens = t > burst ? burst : t;
			b->last_ns = now;
		}
		if (b->tokens == 0) {
			cnt = bpf_map_lookup_elem(&drops, &src);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
			else if (bpf_map_update_elem(&drops, &src, &one, BPF_NOEXIST) &&
				 (cnt = bpf_map_lookup_elem(&drops, &src)))
				__sync_fetch_and_add(cnt, 1);
			__sync_fetch_and_add(&limited, 1);
			return XDP_DROP;
		}
		b->tokens -= 1;
	} else {
		/* a new source starts with a full bucket and spends one token */
		struct Bucket fresh = { .tokens = burst - 1, .last_ns = now };

		bpf_map_update_elem(&buckets, &src, &fresh, BPF_ANY);
	}
	__sync_fetch_and_add(&passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
