// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_flowlabel_hist.ks: IPv6 flow-label and hop-limit
 * histograms (per-CPU arrays), per-class per-CPU {packets, bytes, labelled, low_hop} records,
 * and an LPM drop list of source prefixes whose value is the rule id counted in rule_hits.
 * Listed sources are dropped when flowlabel.enforce is set; hop limits below
 * flowlabel.min_hop_limit are dropped after that. Truncated headers and version != 6 drop.
 * .bss: non_ipv6@0, malformed@8, listed_drops@16, low_hop_drops@24. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58

#define NO_LABEL_SLOT 16
#define MAX_RULES 64

enum { CLASS_TCP = 0, CLASS_UDP = 1, CLASS_ICMPV6 = 2, CLASS_OTHER = 3 };

struct flowlabel_config {
	__u8 min_hop_limit;
	bool enforce;
};

struct V6Prefix {
	__u32 prefixlen;
	__u32 addr[4];	/* wire order */
};

struct ClassStats {
	__u64 packets;
	__u64 bytes;
	__u64 labelled;
	__u64 low_hop;
};

struct flowlabel_config flowlabel SEC(".data.flowlabel") = {
	.min_hop_limit = 1,
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 17);
	__type(key, __u32);
	__type(value, __u64);
} label_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} hop_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct ClassStats);
} class_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct V6Prefix);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} drop_list SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

__u64 non_ipv6 = 0;
__u64 malformed = 0;
__u64 listed_drops = 0;
__u64 low_hop_drops = 0;

/* 0-1, 2-31, 32-63, 64, 65-127, 128, 129-254, 255 */
static __always_inline __u32 hop_bucket(__u8 h)
{
	if (h <= 1)
		return 0;
	if (h < 32)
		return 1;
	if (h < 64)
		return 2;
	if (h == 64)
		return 3;
	if (h < 128)
		return 4;
	if (h == 128)
		return 5;
	if (h < 255)
		return 6;
	return 7;
}

static __always_inline void percpu_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

SEC("xdp")
int flowlabel_hist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct ClassStats *s;
	struct V6Prefix key;
	__u32 label, class, *rule;
	__u64 *hits;
	bool low;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
		__sync_fetch_and_add(&non_ipv6, 1);
		return XDP_PASS;
	}
	if ((void *)(ip6 + 1) > data_end || ip6->version != 6) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	label = (ip6->flow_lbl[0] & 0x0f) << 16 | ip6->flow_lbl[1] << 8 | ip6->flow_lbl[2];
	percpu_inc(&label_hist, label ? label >> 16 : NO_LABEL_SLOT);
	percpu_inc(&hop_hist, hop_bucket(ip6->hop_limit));

	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
		class = CLASS_TCP;
		break;
	case IPPROTO_UDP:
		class = CLASS_UDP;
		break;
	case IPPROTO_ICMPV6:
		class = CLASS_ICMPV6;
		break;
	default:
		class = CLASS_OTHER;
	}
	low = ip6->hop_limit < flowlabel.min_hop_limit;
	s = bpf_map_lookup_elem(&class_stats, &class);
	if (s) {
		s->packets += 1;
		s->bytes += data_end - data;
		if (label)
			s->labelled += 1;
		if (low)
			s->low_hop += 1;
	}

	key.prefixlen = 128;
	__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
	rule = bpf_map_lookup_elem(&drop_list, &key);
	if (rule) {
		hits = bpf_map_lookup_elem(&rule_hits, rule);
		if (hits)
			__sync_fetch_and_add(hits, 1);
		if (flowlabel.enforce) {
			__sync_fetch_and_add(&listed_drops, 1);
			return XDP_DROP;
		}
	}
	if (low) {
		__sync_fetch_and_add(&low_hop_drops, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
