// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_syn_flood.ks: count bare SYNs per source /24
 * in an LRU hash ({syns, first_seen_ns}); drop SYNs from prefixes above the configured
 * threshold and count the drops. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define PREFIX_MASK 0xFFFFFF00	/* a /24, host order */

enum syn_event { EV_TRACKED = 0, EV_NEW_PREFIX = 1, EV_OVER_LIMIT = 2, EV_MAX };

struct SynCount {
	__u64 syns;
	__u64 first_seen_ns;
};

/* config syn_guard { threshold: u64 = 100 } */
struct syn_guard_config {
	__u64 threshold;
};

struct syn_guard_config syn_guard SEC(".data.syn_guard") = {
	.threshold = 100,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);	/* source prefix, host order */
	__type(value, struct SynCount);
} syn_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} syn_events SEC(".maps");

__u64 syn_drops = 0;

static __always_inline void count_event(__u32 ev)
{
	__u64 *v = bpf_map_lookup_elem(&syn_events, &ev);

	if (v)
		*v += 1;	/* per-CPU slot */
}

SEC("xdp")
int syn_flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct SynCount *entry;
	struct tcphdr *tcp;
	__u32 ihl, prefix;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;

	count_event(EV_TRACKED);
	prefix = bpf_ntohl(ip->saddr) & PREFIX_MASK;
	entry = bpf_map_lookup_elem(&syn_sources, &prefix);
	if (entry) {
		entry->syns += 1;
		if (entry->syns > syn_guard.threshold) {
			count_event(EV_OVER_LIMIT);
			__sync_fetch_and_add(&syn_drops, 1);
			return XDP_DROP;
		}
	} else {
		struct SynCount fresh = {
			.syns = 1,
			.first_seen_ns = bpf_ktime_get_ns(),
		};

		bpf_map_update_elem(&syn_sources, &prefix, &fresh, BPF_ANY);
		count_event(EV_NEW_PREFIX);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
