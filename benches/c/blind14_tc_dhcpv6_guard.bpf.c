// SPDX-License-Identifier: GPL-2.0
/* blind14_tc_dhcpv6_guard.bpf.c — C twin of benches/programs/blind14_tc_dhcpv6_guard.ks.
 * tc ingress DHCPv6 guard: IPv6 (up to 3 hop-by-hop / destination-options headers skipped),
 * UDP to port 546 (or 547 with count_clients): count msg-types; ADVERTISE/REPLY/RECONFIGURE
 * from a source not in trusted_servers is counted per source and shot when enforcing.
 * Truncated frames pass and are counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6		0x86DD
#define NEXTHDR_HOP		0
#define NEXTHDR_UDP		17
#define NEXTHDR_DEST		60
#define DHCP6_CLIENT_PORT	546
#define DHCP6_SERVER_PORT	547
#define MAX_EXT_HDRS		3

#define TC_ACT_OK		0
#define TC_ACT_SHOT		2

struct addr6 {
	__u32 w[4];
};

struct dhcp6guard_config {
	bool enforce;
	bool count_clients;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} msg_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct addr6);
	__type(value, __u32);
} trusted_servers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr6);
	__type(value, __u64);
} untrusted_srcs SEC(".maps");

__u64 truncated = 0;

struct dhcp6guard_config dhcp6guard SEC(".data.dhcp6guard") = {
	.enforce = true,
	.count_clients = false,
};

SEC("tcx/ingress")
int dhcpv6_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	struct addr6 src;
	__u32 off = sizeof(*eth) + sizeof(*ip6), slot;
	__u64 *cnt, one = 1;
	bool to_client;
	__u8 nh, mtype;
	__u8 *p;
	int i;

	if ((void *)(eth + 1) > data_end)
		goto trunc;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		goto trunc;

	nh = ip6->nexthdr;
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		struct ipv6_opt_hdr *eh;

		if (nh != NEXTHDR_HOP && nh != NEXTHDR_DEST)
			break;
		eh = data + off;
		if ((void *)(eh + 1) > data_end)
			goto trunc;
		nh = eh->nexthdr;
		off += (eh->hdrlen + 1) * 8;
	}
	if (nh != NEXTHDR_UDP)
		return TC_ACT_OK;

	udp = data + off;
	if ((void *)(udp + 1) > data_end)
		goto trunc;
	to_client = udp->dest == bpf_htons(DHCP6_CLIENT_PORT);
	if (!to_client && !(udp->dest == bpf_htons(DHCP6_SERVER_PORT) && dhcp6guard.count_clients))
		return TC_ACT_OK;
	p = (void *)(udp + 1);
	if ((void *)(p + 1) > data_end)
		goto trunc;
	mtype = *p;
	slot = mtype < 31 ? mtype : 31;
	cnt = bpf_map_lookup_elem(&msg_types, &slot);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (!to_client)
		return TC_ACT_OK;
	if (mtype != 2 && mtype != 7 && mtype != 10)	/* ADVERTISE, REPLY, RECONFIGURE */
		return TC_ACT_OK;

	__builtin_memcpy(&src, &ip6->saddr, sizeof(src));
	if (bpf_map_lookup_elem(&trusted_servers, &src))
		return TC_ACT_OK;
	cnt = bpf_map_lookup_elem(&untrusted_srcs, &src);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else if (bpf_map_update_elem(&untrusted_srcs, &src, &one, BPF_NOEXIST) &&
		 (cnt = bpf_map_lookup_elem(&untrusted_srcs, &src)))
		__sync_fetch_and_add(cnt, 1);	/* lost the race to another CPU */
	return dhcp6guard.enforce ? TC_ACT_SHOT : TC_ACT_OK;

trunc:
	__sync_fetch_and_add(&truncated, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
