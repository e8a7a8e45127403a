// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_xdp_icmpv6_echo.ks: answer ICMPv6 echo requests to the
 * configured IPv6 address from XDP — swap MACs and IPv6 addresses, type 128 -> 129, update the
 * ICMPv6 checksum incrementally (RFC 1624; the address swap leaves the pseudo-header sum
 * unchanged) — and return XDP_TX. Other ICMPv6 types are counted per type in a hash map
 * (insert-or-add), unanswered echo requests in a global. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define ETH_ALEN 6
#define IPPROTO_ICMPV6 58
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

/* config echo6 { addr: u8[16] } */
struct echo6_config {
	__u8 addr[16];	/* as on the wire */
};

/* aligned(8): the address is compared as two 64-bit words */
struct echo6_config echo6 SEC(".data.echo6") __attribute__((aligned(8))) = {
	/* 2001:db8::1 */
	.addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8);
	__type(value, __u64);
} icmp6_types SEC(".maps");

__u64 echo_replies = 0;
__u64 unanswered_requests = 0;

/* RFC 1624 eqn. 3: the checksum after one 16-bit word changes from old to new (host order) */
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32)new;

	sum = (sum & 0xFFFF) + (sum >> 16);
	sum = (sum & 0xFFFF) + (sum >> 16);
	return ~sum;
}

static __always_inline void count_type(__u8 type)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&icmp6_types, &type);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&icmp6_types, &type, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&icmp6_types, &type);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int icmpv6_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct icmp6hdr *icmp = (void *)(ip6 + 1);
	struct in6_addr addr;
	unsigned char mac[ETH_ALEN];

	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if (ip6->nexthdr != IPPROTO_ICMPV6 || (void *)icmp + 4 > data_end)
		return XDP_PASS;
	if (icmp->icmp6_type != ICMPV6_ECHO_REQUEST) {
		count_type(icmp->icmp6_type);
		return XDP_PASS;
	}
	if (icmp->icmp6_code != 0 || (void *)(icmp + 1) > data_end)
		goto unanswered;
	if (*(__u64 *)&ip6->daddr.in6_u.u6_addr8[0] != *(__u64 *)&echo6.addr[0] ||
	    *(__u64 *)&ip6->daddr.in6_u.u6_addr8[8] != *(__u64 *)&echo6.addr[8])
		goto unanswered;

	/* type and code form the first word of the ICMPv6 header */
	icmp->icmp6_type = ICMPV6_ECHO_REPLY;
	icmp->icmp6_cksum = bpf_htons(csum_replace(bpf_ntohs(icmp->icmp6_cksum),
						   ICMPV6_ECHO_REQUEST << 8, ICMPV6_ECHO_REPLY << 8));

	addr = ip6->saddr;
	ip6->saddr = ip6->daddr;
	ip6->daddr = addr;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	__sync_fetch_and_add(&echo_replies, 1);
	return XDP_TX;

unanswered:
	__sync_fetch_and_add(&unanswered_requests, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
