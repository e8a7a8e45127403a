// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_tc_nat64_check.ks: NAT64 egress policy on tc. IPv6 packets
 * whose destination is in the configured /96 prefix (three config words, host order) carry an
 * IPv4 destination in their last address word; it must be in allowed_v4 (its counter is bumped),
 * else the packet is counted as denied, reported on the ring buffer and dropped (passed with
 * enforce off). Per-CPU counters use plain adds. The .ks's presence test and `+= 1` are one
 * lookup and an atomic add through the returned pointer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define N_NOT_IPV6 0
#define N_OTHER_DST 1
#define N_ALLOWED 2
#define N_DENIED 3

struct nat64_config {
	__u32 prefix0;
	__u32 prefix1;
	__u32 prefix2;
	bool enforce;
};

struct nat64_config nat64 SEC(".data.nat64") = {
	.prefix0 = 0x0064ff9b,
	.prefix1 = 0,
	.prefix2 = 0,
	.enforce = true,
};

struct Nat64Deny {
	__u32 saddr[4];
	__u32 v4_daddr;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} allowed_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} nat64_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} denials SEC(".maps");

__u64 events_lost = 0;

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&nat64_counts, &idx);

	if (v)
		*v += 1;
}

SEC("tcx/egress")
int nat64_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct Nat64Deny *ev;
	__u32 *daddr, v4;
	__u64 *hits;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6) ||
	    (void *)(ip6 + 1) > data_end) {
		bump(N_NOT_IPV6);
		return TC_ACT_OK;
	}
	daddr = ip6->daddr.in6_u.u6_addr32;
	if (bpf_ntohl(daddr[0]) != nat64.prefix0 || bpf_ntohl(daddr[1]) != nat64.prefix1 ||
	    bpf_ntohl(daddr[2]) != nat64.prefix2) {
		bump(N_OTHER_DST);
		return TC_ACT_OK;
	}
	v4 = daddr[3];
	hits = bpf_map_lookup_elem(&allowed_v4, &v4);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		bump(N_ALLOWED);
		return TC_ACT_OK;
	}
	bump(N_DENIED);
	ev = bpf_ringbuf_reserve(&denials, sizeof(*ev), 0);
	if (ev) {
		__builtin_memcpy(ev->saddr, ip6->saddr.in6_u.u6_addr32, sizeof(ev->saddr));
		ev->v4_daddr = v4;
		ev->payload_len = bpf_ntohs(ip6->payload_len);
		ev->nexthdr = ip6->nexthdr;
		ev->pad = 0;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&events_lost, 1);
	}
	return nat64.enforce ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
