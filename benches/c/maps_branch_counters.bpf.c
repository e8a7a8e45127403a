// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_branch_counters.ks: egress traffic
 * breakdown, one hash counter per kind of frame, outgoing SMTP dropped, bytes summed
 * per verdict. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum Counter {
	NonIp = 0,
	Ipv6 = 1,
	Ipv4Tcp = 2,
	Ipv4Udp = 3,
	Ipv4Icmp = 4,
	Ipv4Other = 5,
	Dns = 6,
	SmtpBlocked = 7,
	Truncated = 8,
};

enum Verdict { Passed = 0, Dropped = 1 };

/* the first four bytes of a TCP or UDP header */
struct L4Ports {
	__u16 source;
	__u16 dest;
};

/* key: an enum Counter */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* key: an enum Verdict */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} verdict_bytes SEC(".maps");

/* counters[key] += 1: atomic add to an existing entry, else insert 1. If another CPU
 * inserted the entry in between, add to that one. */
static __always_inline void count(__u32 key)
{
	__u64 one = 1, *val = bpf_map_lookup_elem(&counters, &key);

	if (!val) {
		if (!bpf_map_update_elem(&counters, &key, &one, BPF_NOEXIST))
			return;
		val = bpf_map_lookup_elem(&counters, &key);
		if (!val)
			return;
	}
	__sync_fetch_and_add(val, 1);
}

static __always_inline void add_bytes(__u32 verdict, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(&verdict_bytes, &verdict);

	if (val)
		__sync_fetch_and_add(val, n);
}

SEC("tcx/egress")
int egress_counters(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct L4Ports *ports;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end) {
		count(Truncated);
		return TC_ACT_OK;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		count(Ipv6);
	} else if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(NonIp);
	} else {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end) {
			count(Truncated);
			return TC_ACT_OK;
		}
		ports = (void *)ip + ip->ihl * 4;
		switch (ip->protocol) {
		case IPPROTO_TCP:
			count(Ipv4Tcp);
			if ((void *)(ports + 1) <= data_end && ports->dest == bpf_htons(25)) {
				count(SmtpBlocked);
				add_bytes(Dropped, skb->len);
				return TC_ACT_SHOT;
			}
			break;
		case IPPROTO_UDP:
			count(Ipv4Udp);
			if ((void *)(ports + 1) <= data_end && ports->dest == bpf_htons(53))
				count(Dns);
			break;
		case IPPROTO_ICMP:
			count(Ipv4Icmp);
			break;
		default:
			count(Ipv4Other);
		}
	}
	add_bytes(Passed, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
