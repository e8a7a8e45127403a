// SPDX-License-Identifier: GPL-2.0
/* NPTv6-style /48 source prefix translation on TC egress. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6	0x86DD
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2

#define IP6_OFF		14
#define L4_OFF		54	/* Ethernet + fixed IPv6 header */
#define NO_L4_CSUM	0

#define IPPROTO_ICMPV6	58
#define IPPROTO_NONE	59

#define BPF_F_PSEUDO_HDR	0x10
#define BPF_F_MARK_MANGLED_0	0x20

enum nat_stat {
	NS_TRANSLATED = 0,
	NS_NO_RULE = 1,
	NS_INTERNAL = 2,
	NS_NOT_IPV6 = 3,
	NS_MALFORMED = 4,
	NS_UNSUPPORTED = 5,
	NS_CSUM_FAILED = 6,
};

struct v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct nat66_rule {
	__u8 ext_prefix[6];
	__u16 rule_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct v6_key);
	__type(value, struct nat66_rule);
} nat66_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} nat66_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

__u64 translated_bytes = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tcx/egress")
int blind18_tc_nat66(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct nat66_rule *rule;
	struct v6_key key;
	__u32 csum_off, old_hi[2], new_hi[2];
	__u16 id;
	__u8 nexthdr;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
		count(&nat66_stats, NS_NOT_IPV6);
		return TC_ACT_OK;
	}
	if (data + L4_OFF > data_end) {
		count(&nat66_stats, NS_MALFORMED);
		return TC_ACT_OK;
	}
	ip6 = data + IP6_OFF;

	key.prefixlen = 128;
	__builtin_memcpy(key.addr, ip6->saddr.in6_u.u6_addr8, 16);
	rule = bpf_map_lookup_elem(&nat66_rules, &key);
	if (!rule) {
		count(&nat66_stats, NS_NO_RULE);
		return TC_ACT_OK;
	}
	key.prefixlen = 128;
	__builtin_memcpy(key.addr, ip6->daddr.in6_u.u6_addr8, 16);
	if (bpf_map_lookup_elem(&nat66_rules, &key)) {
		count(&nat66_stats, NS_INTERNAL);
		return TC_ACT_OK;
	}

	nexthdr = ip6->nexthdr;
	switch (nexthdr) {
	case IPPROTO_TCP:
		csum_off = offsetof(struct tcphdr, check);
		break;
	case IPPROTO_UDP:
		csum_off = offsetof(struct udphdr, check);
		break;
	case IPPROTO_ICMPV6:
		csum_off = offsetof(struct icmp6hdr, icmp6_cksum);
		break;
	case IPPROTO_ESP:
	case IPPROTO_NONE:
		csum_off = NO_L4_CSUM;
		break;
	default:
		/* extension headers, fragments, ...: not translated here */
		count(&nat66_stats, NS_UNSUPPORTED);
		return TC_ACT_OK;
	}
	if (csum_off != NO_L4_CSUM && data + L4_OFF + csum_off + 2 > data_end) {
		count(&nat66_stats, NS_MALFORMED);
		return TC_ACT_OK;
	}

	/* old and new first 8 bytes of the source address (bytes 6, 7 unchanged) */
	__builtin_memcpy(old_hi, ip6->saddr.in6_u.u6_addr8, 8);
	__builtin_memcpy(new_hi, ip6->saddr.in6_u.u6_addr8, 8);
	__builtin_memcpy(new_hi, rule->ext_prefix, 6);
	__builtin_memcpy(ip6->saddr.in6_u.u6_addr8, rule->ext_prefix, 6);
	id = rule->rule_id;

	if (csum_off != NO_L4_CSUM) {
		__s64 diff = bpf_csum_diff(old_hi, 8, new_hi, 8, 0);
		__u64 flags = BPF_F_PSEUDO_HDR;

		if (nexthdr == IPPROTO_UDP)
			flags |= BPF_F_MARK_MANGLED_0;
		if (bpf_l4_csum_replace(skb, L4_OFF + csum_off, 0, diff, flags)) {
			count(&nat66_stats, NS_CSUM_FAILED);
			return TC_ACT_SHOT;
		}
	}

	count(&nat66_stats, NS_TRANSLATED);
	count(&rule_hits, id);
	__sync_fetch_and_add(&translated_bytes, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
