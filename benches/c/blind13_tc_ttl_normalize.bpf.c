// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_tc_ttl_normalize.ks: on egress, after at most two VLAN tags,
 * raise an IPv4 TTL below min_ttl to min_ttl with an RFC 1624 incremental update of the header
 * checksum (done by hand on the TTL/protocol word), and an IPv6 hop limit below min_hop_limit
 * likewise. Multicast is skipped when configured; IPv4 destinations in exempt_dst are left
 * alone and counted there. Counters per family; per-CPU histogram of the original values. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define MAX_TAGS 2
#define TC_ACT_OK 0

enum {
	V4_REWRITTEN = 0,
	V4_UNTOUCHED = 1,
	V6_REWRITTEN = 2,
	V6_UNTOUCHED = 3,
	V4_EXEMPT = 4,
	NOT_IP = 5,
	TRUNCATED = 6,
	TOO_MANY_TAGS = 7,
};

struct ttlnorm_config {
	__u8 min_ttl;
	__u8 min_hop_limit;
	bool skip_multicast;
	bool fix_v6;
};

struct ttlnorm_config ttlnorm SEC(".data.ttlnorm") = {
	.min_ttl = 64,
	.min_hop_limit = 64,
	.skip_multicast = true,
	.fix_v6 = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} raised_from SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} exempt_dst SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void histogram(__u32 orig)
{
	__u64 *v = bpf_map_lookup_elem(&raised_from, &orig);

	if (v)
		*v += 1;
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* RFC 1624 eqn. 3 in host byte order: HC' = ~(~HC + ~m + m') */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + new;

	return ~fold(sum);
}

SEC("tcx/egress")
int ttl_normalize(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth);
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end) {
		count(TRUNCATED);
		return TC_ACT_OK;
	}
	proto = eth->h_proto;
	for (i = 0; i < MAX_TAGS; i++) {
		struct vlan_hdr *vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = data + l3;
		if ((void *)(vh + 1) > data_end) {
			count(TRUNCATED);
			return TC_ACT_OK;
		}
		proto = vh->h_vlan_encapsulated_proto;
		l3 += sizeof(*vh);
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		count(TOO_MANY_TAGS);
		return TC_ACT_OK;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + l3;
		__u16 old_word, new_word;
		__u8 min, ttl;
		__u64 *spared;

		if ((void *)(ip + 1) > data_end) {
			count(TRUNCATED);
			return TC_ACT_OK;
		}
		if (ip->version != 4) {
			count(NOT_IP);
			return TC_ACT_OK;
		}
		min = ttlnorm.min_ttl;
		ttl = ip->ttl;
		if (ttl >= min) {
			count(V4_UNTOUCHED);
			return TC_ACT_OK;
		}
		if (ttlnorm.skip_multicast && (bpf_ntohl(ip->daddr) >> 28) == 14) {
			count(V4_UNTOUCHED);
			return TC_ACT_OK;
		}
		spared = bpf_map_lookup_elem(&exempt_dst, &ip->daddr);
		if (spared) {
			__sync_fetch_and_add(spared, 1);
			count(V4_EXEMPT);
			return TC_ACT_OK;
		}
		old_word = (__u16)ttl << 8 | ip->protocol;
		new_word = (__u16)min << 8 | ip->protocol;
		ip->check = bpf_htons(csum_replace16(bpf_ntohs(ip->check), old_word, new_word));
		ip->ttl = min;
		histogram(ttl);
		count(V4_REWRITTEN);
		return TC_ACT_OK;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + l3;
		__u8 min6, hl;

		if ((void *)(ip6 + 1) > data_end) {
			count(TRUNCATED);
			return TC_ACT_OK;
		}
		if (ip6->version != 6) {
			count(NOT_IP);
			return TC_ACT_OK;
		}
		min6 = ttlnorm.min_hop_limit;
		hl = ip6->hop_limit;
		if (!ttlnorm.fix_v6 || hl >= min6) {
			count(V6_UNTOUCHED);
			return TC_ACT_OK;
		}
		if (ttlnorm.skip_multicast && ip6->daddr.in6_u.u6_addr8[0] == 0xff) {
			count(V6_UNTOUCHED);
			return TC_ACT_OK;
		}
		ip6->hop_limit = min6;
		histogram(hl);
		count(V6_REWRITTEN);
		return TC_ACT_OK;
	}

	count(NOT_IP);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
