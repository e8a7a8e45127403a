// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_ipv6_acl.ks: IPv6 source-prefix ACL in XDP.
 * One 802.1Q/802.1ad tag is stepped over; the source address is looked up in an LPM trie of
 * allow/deny rules; denies are counted per reason; ICMPv6 may bypass the rules. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58

enum AclAction { Allow = 1, Deny = 2 };
enum DenyReason { ByRule = 0, ByDefault = 1 };

/* LPM key: prefix length in bits, then the address bytes as on the wire */
struct Ip6Key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* config acl { default_deny: bool = false, allow_icmp6: bool = true } */
struct acl_config {
	bool default_deny;
	bool allow_icmp6;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct Ip6Key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} acl_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} denied SEC(".maps");

struct acl_config acl SEC(".data.acl") = {
	.default_deny = false,
	.allow_icmp6 = true,
};

__u64 tagged_frames = 0;
__u64 non_ipv6 = 0;
__u64 malformed = 0;
__u64 icmp6_bypassed = 0;
__u64 allowed = 0;
__u64 unmatched = 0;

static __always_inline int deny(__u32 reason)
{
	__u64 *cnt = bpf_map_lookup_elem(&denied, &reason);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_DROP;
}

SEC("xdp")
int ipv6_acl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct Ip6Key key;
	__u32 *action;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	ip6 = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end) {
			__sync_fetch_and_add(&malformed, 1);
			return XDP_DROP;
		}
		proto = vlan->h_vlan_encapsulated_proto;
		ip6 = (void *)(vlan + 1);
		__sync_fetch_and_add(&tagged_frames, 1);
	}
	if (proto != bpf_htons(ETH_P_IPV6)) {
		__sync_fetch_and_add(&non_ipv6, 1);
		return XDP_PASS;
	}
	if ((void *)(ip6 + 1) > data_end || ip6->version != 6) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	if (ip6->nexthdr == IPPROTO_ICMPV6 && acl.allow_icmp6) {
		__sync_fetch_and_add(&icmp6_bypassed, 1);
		return XDP_PASS;
	}

	key.prefixlen = 128;
	__builtin_memcpy(key.addr, ip6->saddr.in6_u.u6_addr8, sizeof(key.addr));
	action = bpf_map_lookup_elem(&acl_rules, &key);
	if (action) {
		if (*action == Deny)
			return deny(ByRule);
		__sync_fetch_and_add(&allowed, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&unmatched, 1);
	if (acl.default_deny)
		return deny(ByDefault);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
