// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_mpls_stack.ks: walks the MPLS label stack (at most four
 * entries, up to the bottom-of-stack bit), counts packets per top label, drops denied labels
 * (when enforcing), stacks without a bottom entry and IPv4 payloads with TTL <= 1, and counts
 * every outcome and the stack depth. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_MPLS_UC 0x8847
#define MAX_LABELS 4

#define OUT_NOT_MPLS 0
#define OUT_TRUNCATED 1
#define OUT_DENIED 2
#define OUT_TOO_DEEP 3
#define OUT_TTL_EXPIRED 4
#define OUT_FWD_IPV4 5
#define OUT_FWD_IPV6 6
#define OUT_FWD_OTHER 7

struct mpls_policy_config {
	bool enforce;
};

struct mpls_policy_config mpls_policy SEC(".data.mpls_policy") = {
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} top_label_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} denied_labels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} depths SEC(".maps");

__u64 mpls_packets = 0;
__u64 denied_seen = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, __u32 key)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(map, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int mpls_stack(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 labels = 0, slot;
	bool enforce, bottom = false;
	unsigned char *p = data + sizeof(*eth);
	int i;

	if ((void *)(eth + 1) > data_end) {
		array_inc(&outcomes, OUT_TRUNCATED);
		return XDP_DROP;
	}
	if (eth->h_proto != bpf_htons(ETH_P_MPLS_UC)) {
		array_inc(&outcomes, OUT_NOT_MPLS);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&mpls_packets, 1);

	enforce = mpls_policy.enforce;

	for (i = 0; i < MAX_LABELS; i++) {
		__u32 entry, label;

		if ((void *)(p + 4) > data_end) {
			array_inc(&outcomes, OUT_TRUNCATED);
			return XDP_DROP;
		}
		entry = bpf_ntohl(*(__u32 *)p);
		label = entry >> 12;
		if (i == 0)
			hash_inc(&top_label_packets, label);
		if (bpf_map_lookup_elem(&denied_labels, &label)) {
			__sync_fetch_and_add(&denied_seen, 1);
			if (enforce) {
				array_inc(&outcomes, OUT_DENIED);
				return XDP_DROP;
			}
		}
		labels++;
		p += 4;
		if (entry & 0x100) {
			bottom = true;
			break;
		}
	}
	array_inc(&depths, labels);

	if (!bottom) {
		array_inc(&outcomes, OUT_TOO_DEEP);
		return XDP_DROP;
	}

	if ((void *)(p + 1) > data_end) {
		array_inc(&outcomes, OUT_FWD_OTHER);
		return XDP_PASS;
	}
	switch (*p >> 4) {
	case 4: {
		struct iphdr *ip = (void *)p;

		if ((void *)(ip + 1) > data_end) {
			array_inc(&outcomes, OUT_TRUNCATED);
			return XDP_DROP;
		}
		if (ip->ttl <= 1) {
			array_inc(&outcomes, OUT_TTL_EXPIRED);
			return XDP_DROP;
		}
		slot = OUT_FWD_IPV4;
		break;
	}
	case 6:
		slot = OUT_FWD_IPV6;
		break;
	default:
		slot = OUT_FWD_OTHER;
		break;
	}
	array_inc(&outcomes, slot);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
