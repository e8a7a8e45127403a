// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/cgroup_net_policy.ks: per-cgroup byte accounting
 * per peer address and an egress destination deny list. cgroup_skb programs see the
 * packet from the IP header on; they return 1 to allow and 0 to drop. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* key: destination address (network byte order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} denied_dst SEC(".maps");

/* bytes per destination address */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tx_bytes SEC(".maps");

/* bytes per source address */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} rx_bytes SEC(".maps");

__u64 denied_packets = 0;

/* map[key] += n: atomic add to an existing entry, else insert n. If another CPU
 * inserted the entry in between, add to that one. */
static __always_inline void add_bytes(void *map, __u32 *key, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, key);

	if (!val) {
		if (!bpf_map_update_elem(map, key, &n, BPF_NOEXIST))
			return;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return;
	}
	__sync_fetch_and_add(val, n);
}

SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	__u32 daddr;

	if ((void *)(ip + 1) > data_end)
		return 1;
	if (ip->version != 4)
		return 1;	/* only IPv4 is policed here */
	daddr = ip->daddr;
	if (bpf_map_lookup_elem(&denied_dst, &daddr)) {
		__sync_fetch_and_add(&denied_packets, 1);
		return 0;
	}
	add_bytes(&tx_bytes, &daddr, skb->len);
	return 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	__u32 saddr;

	if ((void *)(ip + 1) > data_end)
		return 1;
	if (ip->version == 4) {
		saddr = ip->saddr;
		add_bytes(&rx_bytes, &saddr, skb->len);
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
