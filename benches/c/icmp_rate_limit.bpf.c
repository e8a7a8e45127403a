// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/icmp_rate_limit.ks: per-source ICMP echo-request
 * rate limiting with fixed windows kept in an LRU hash. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ICMP_ECHO_REQUEST 8
#define NSEC_PER_MSEC 1000000ULL

/* config limits { max_per_window: u32 = 10, window_ms: u32 = 1000 } */
struct limits_config {
	__u32 max_per_window;
	__u32 window_ms;
};

/* per-source window (16 bytes, 4 of them tail padding) */
struct Window {
	__u64 start_ns;
	__u32 count;
};

struct limits_config limits SEC(".data.limits") = {
	.max_per_window = 10,
	.window_ms = 1000,
};

/* key: IPv4 source address (network byte order) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct Window);
} windows SEC(".maps");

__u64 dropped_pings = 0;

SEC("xdp")
int icmp_limiter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp;
	struct Window *w;
	__u64 now, window_ns;
	__u32 src, max;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != ICMP_ECHO_REQUEST)
		return XDP_PASS;

	now = bpf_ktime_get_ns();
	window_ns = limits.window_ms * NSEC_PER_MSEC;
	max = limits.max_per_window;

	src = ip->saddr;
	w = bpf_map_lookup_elem(&windows, &src);
	if (!w) {
		struct Window fresh = {};

		fresh.start_ns = now;
		fresh.count = 1;
		bpf_map_update_elem(&windows, &src, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	if (now - w->start_ns >= window_ns) {
		/* a new window starts with this packet */
		w->start_ns = now;
		w->count = 1;
		return XDP_PASS;
	}
	if (w->count >= max) {
		__sync_fetch_and_add(&dropped_pings, 1);
		return XDP_DROP;
	}
	w->count++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
