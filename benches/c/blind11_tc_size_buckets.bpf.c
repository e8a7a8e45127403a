// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind11_tc_size_buckets.ks: counts every ingress
 * frame in a power-of-two size histogram and in the totals; for IPv4 and IPv6 (behind an
 * optional 802.1Q tag) counts packets per DSCP, frame bytes per IP protocol and small packets,
 * and counts (and, when configured, drops) packets whose IP length disagrees with the frame. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define MIN_PAYLOAD 46
#define BUCKETS 11

/* config size_policy { strict_length: bool, small_len: u16 } */
struct size_policy_config {
	bool strict_length;
	__u16 small_len;
};

struct size_policy_config size_policy SEC(".data.size_policy") = {
	.strict_length = false,
	.small_len = 64,
};

/* size bucket -> frames */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 11);
	__type(key, __u32);
	__type(value, __u64);
} size_hist SEC(".maps");

/* DSCP -> IP packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} dscp_packets SEC(".maps");

/* IP protocol / IPv6 next header -> frame bytes */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_bytes SEC(".maps");

/* .bss, in declaration order */
__u64 total_frames = 0;
__u64 total_bytes = 0;
__u64 ipv4_packets = 0;
__u64 ipv6_packets = 0;
__u64 non_ip = 0;
__u64 small_packets = 0;
__u64 length_mismatch = 0;
__u64 bad_header = 0;

static __always_inline __u32 size_bucket(__u32 len)
{
	__u32 bucket = 0, rest = len >> 6;

	while (rest > 0 && bucket < BUCKETS - 1) {
		rest >>= 1;
		bucket++;
	}
	return bucket;
}

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *cnt = bpf_map_lookup_elem(map, &key);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
}

/* m[key] += n on a hash map: atomic add, inserting the entry when missing */
static __always_inline void hash_add(void *map, __u32 key, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val) {
		__sync_fetch_and_add(val, n);
		return;
	}
	if (!bpf_map_update_elem(map, &key, &n, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, &key);
	if (val)
		__sync_fetch_and_add(val, n);
}

SEC("tcx/ingress")
int size_buckets(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 frame_len = skb->len;
	struct ethhdr *eth = data;
	void *l3 = (void *)(eth + 1);
	__u16 proto;
	__u32 dscp, ip_proto, ip_len, ip_end, l3_off;

	__sync_fetch_and_add(&total_frames, 1);
	__sync_fetch_and_add(&total_bytes, frame_len);
	array_inc(&size_hist, size_bucket(frame_len));

	if ((void *)(eth + 1) > data_end) {
		__sync_fetch_and_add(&non_ip, 1);
		return TC_ACT_OK;
	}
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		proto = vh->h_vlan_encapsulated_proto;
		l3 = (void *)(vh + 1);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		if (ip->version != 4 || ip->ihl < 5) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		__sync_fetch_and_add(&ipv4_packets, 1);
		dscp = ip->tos >> 2;
		ip_proto = ip->protocol;
		ip_len = bpf_ntohs(ip->tot_len);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		if (ip6->version != 6) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		__sync_fetch_and_add(&ipv6_packets, 1);
		/* traffic class: low nibble of byte 0, high nibble of byte 1 */
		dscp = (ip6->priority << 4 | ip6->flow_lbl[0] >> 4) >> 2;
		ip_proto = ip6->nexthdr;
		ip_len = 40 + bpf_ntohs(ip6->payload_len);
	} else {
		__sync_fetch_and_add(&non_ip, 1);
		return TC_ACT_OK;
	}

	array_inc(&dscp_packets, dscp);
	hash_add(&proto_bytes, ip_proto, frame_len);
	if (ip_len <= size_policy.small_len)
		__sync_fetch_and_add(&small_packets, 1);
	l3_off = l3 - data;
	ip_end = l3_off + ip_len;
	if (ip_end > frame_len || (ip_end != frame_len && frame_len > l3_off + MIN_PAYLOAD)) {
		__sync_fetch_and_add(&length_mismatch, 1);
		if (size_policy.strict_length)
			return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
