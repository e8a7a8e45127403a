// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind12_tc_ttl_prefix.ks: IPv4 packets on tc ingress
 * (behind an optional 802.1Q tag) are counted in a TTL histogram and under their source /16,
 * whose lowest TTL is kept; TTLs below `ttl_watch.min_ttl` (multicast destinations exempt when
 * configured) are counted per /16 and dropped below `ttl_watch.drop_below`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* config ttl_watch { min_ttl: u8, drop_below: u8, exempt_multicast: bool } */
struct ttl_watch_config {
	__u8 min_ttl;
	__u8 drop_below;
	bool exempt_multicast;
};

struct ttl_watch_config ttl_watch SEC(".data.ttl_watch") = {
	.min_ttl = 8,
	.drop_below = 0,
	.exempt_multicast = true,
};

/* TTL / 32 -> IPv4 packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ttl_hist SEC(".maps");

/* source /16 -> IPv4 packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} prefix_packets SEC(".maps");

/* source /16 -> packets below min_ttl */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} prefix_low_ttl SEC(".maps");

/* source /16 -> lowest TTL seen */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} prefix_min_ttl SEC(".maps");

/* .bss, in declaration order */
__u64 tagged = 0;
__u64 non_ipv4 = 0;
__u64 bad_header = 0;
__u64 multicast_exempt = 0;
__u64 low_ttl = 0;
__u64 dropped = 0;

/* m[key] += 1 on a hash map: atomic add, inserting the entry when missing */
static __always_inline void hash_inc(void *map, __u32 key)
{
	__u64 one = 1, *val = bpf_map_lookup_elem(map, &key);

	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	if (!bpf_map_update_elem(map, &key, &one, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("tcx/ingress")
int ttl_prefix(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 proto;
	__u32 prefix, key;
	__u8 ttl, *min;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return TC_ACT_OK;
	}
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end) {
			__sync_fetch_and_add(&bad_header, 1);
			return TC_ACT_OK;
		}
		__sync_fetch_and_add(&tagged, 1);
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return TC_ACT_OK;
	}
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&bad_header, 1);
		return TC_ACT_OK;
	}
	if (ip->version != 4 || ip->ihl < 5) {
		__sync_fetch_and_add(&bad_header, 1);
		return TC_ACT_OK;
	}

	ttl = ip->ttl;
	prefix = bpf_ntohl(ip->saddr) & 0xFFFF0000;

	key = ttl / 32;
	cnt = bpf_map_lookup_elem(&ttl_hist, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	hash_inc(&prefix_packets, prefix);
	min = bpf_map_lookup_elem(&prefix_min_ttl, &prefix);
	if (!min)
		bpf_map_update_elem(&prefix_min_ttl, &prefix, &ttl, BPF_ANY);
	else if (ttl < *min)
		*min = ttl;

	if (ttl >= ttl_watch.min_ttl)
		return TC_ACT_OK;
	if (ttl_watch.exempt_multicast && (bpf_ntohl(ip->daddr) >> 28) == 14) {
		__sync_fetch_and_add(&multicast_exempt, 1);
		return TC_ACT_OK;
	}
	__sync_fetch_and_add(&low_ttl, 1);
	hash_inc(&prefix_low_ttl, prefix);
	if (ttl < ttl_watch.drop_below) {
		__sync_fetch_and_add(&dropped, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
