// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind7_tc_prefix_stats.ks: counts egress IPv4
 * packets and bytes (skb->len) per destination /24, optionally leaving out the local /24;
 * non-IPv4 frames and broken IPv4 headers are counted in globals. Always TC_ACT_OK. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0

struct PrefixStats {
	__u64 packets;
	__u64 bytes;
};

/* config prefix_filter { skip_local: bool, local_net: u32 } */
struct prefix_filter_config {
	bool skip_local;
	__u32 local_net;
};

struct prefix_filter_config prefix_filter SEC(".data.prefix_filter") = {
	.skip_local = false,
	.local_net = 0,
};

/* destination /24 (host order, last byte 0) -> packets, bytes */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct PrefixStats);
} dst_prefixes SEC(".maps");

/* .bss, in declaration order */
__u64 non_ipv4 = 0;
__u64 local_skipped = 0;
__u64 bad_header = 0;

SEC("tcx/egress")
int prefix_stats(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct PrefixStats *st;
	struct iphdr *ip;
	__u32 prefix;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	/* step over one VLAN tag */
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end) {
			__sync_fetch_and_add(&non_ipv4, 1);
			return TC_ACT_OK;
		}
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return TC_ACT_OK;
	}

	if ((void *)(ip + 1) > data_end || ip->version != 4) {
		__sync_fetch_and_add(&bad_header, 1);
		return TC_ACT_OK;
	}

	prefix = bpf_ntohl(ip->daddr) & 0xffffff00;

	if (prefix_filter.skip_local && prefix == prefix_filter.local_net) {
		__sync_fetch_and_add(&local_skipped, 1);
		return TC_ACT_OK;
	}

	st = bpf_map_lookup_elem(&dst_prefixes, &prefix);
	if (!st) {
		struct PrefixStats fresh = { .packets = 1, .bytes = skb->len };

		bpf_map_update_elem(&dst_prefixes, &prefix, &fresh, BPF_ANY);
	} else {
		st->packets += 1;
		st->bytes += skb->len;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
