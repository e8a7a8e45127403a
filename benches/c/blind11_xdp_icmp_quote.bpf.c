// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind11_xdp_icmp_quote.ks: for IPv4 ICMP
 * destination-unreachable and time-exceeded errors, parses the quoted IPv4 header and its first
 * 8 transport bytes; drops malformed quotes, quotes of a blocked port, quotes whose source is not
 * the error's destination (when configured) and "fragmentation needed" errors with a tiny MTU;
 * counts errors per sender, per unreachable code and per quoted (protocol, destination port). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_FRAG_NEEDED 4
#define CODE_SLOTS 16

/* config quote_policy { blocked_port: u16, min_mtu: u16, check_source: bool } */
struct quote_policy_config {
	__u16 blocked_port;
	__u16 min_mtu;
	bool check_source;
};

struct quote_policy_config quote_policy SEC(".data.quote_policy") = {
	.blocked_port = 0,
	.min_mtu = 552,
	.check_source = false,
};

/* protocol * 65536 + destination port -> errors */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} quoted_flows SEC(".maps");

/* router (host order) -> errors it sent */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} error_senders SEC(".maps");

/* code -> destination unreachables */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} unreach_codes SEC(".maps");

/* .bss, in declaration order */
__u64 icmp_errors = 0;
__u64 time_exceeded = 0;
__u64 other_icmp = 0;
__u64 truncated_icmp = 0;
__u64 malformed_quotes = 0;
__u64 spoofed_quotes = 0;
__u64 blocked_quotes = 0;
__u64 small_mtu = 0;

/* m[key] += 1 on a hash map: atomic add, inserting the entry when missing */
static __always_inline void count_key(void *map, __u32 key)
{
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(map, &key);
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

SEC("xdp")
int icmp_quote(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp;
	struct iphdr *inner;
	__u8 *l4;
	__u32 slot, port = 0;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	/* later fragments carry no ICMP header */
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;

	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end) {
		__sync_fetch_and_add(&truncated_icmp, 1);
		return XDP_DROP;
	}
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED) {
		__sync_fetch_and_add(&other_icmp, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&icmp_errors, 1);
	count_key(&error_senders, bpf_ntohl(ip->saddr));
	if (icmp->type == ICMP_TIME_EXCEEDED) {
		__sync_fetch_and_add(&time_exceeded, 1);
	} else {
		slot = icmp->code;
		if (slot >= CODE_SLOTS)
			slot = CODE_SLOTS - 1;
		cnt = bpf_map_lookup_elem(&unreach_codes, &slot);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}

	/* the quoted IPv4 header, then 8 bytes of its transport header */
	inner = (void *)(icmp + 1);
	if ((void *)(inner + 1) > data_end) {
		__sync_fetch_and_add(&malformed_quotes, 1);
		return XDP_DROP;
	}
	if (inner->version != 4 || inner->ihl < 5) {
		__sync_fetch_and_add(&malformed_quotes, 1);
		return XDP_DROP;
	}
	l4 = (void *)inner + inner->ihl * 4;
	if ((void *)(l4 + 8) > data_end) {
		__sync_fetch_and_add(&malformed_quotes, 1);
		return XDP_DROP;
	}

	if (inner->protocol == IPPROTO_TCP || inner->protocol == IPPROTO_UDP)
		port = bpf_ntohs(((struct udphdr *)l4)->dest);
	count_key(&quoted_flows, (__u32)inner->protocol << 16 | port);

	if (inner->saddr != ip->daddr) {
		__sync_fetch_and_add(&spoofed_quotes, 1);
		if (quote_policy.check_source)
			return XDP_DROP;
	}
	if (port != 0 && port == quote_policy.blocked_port) {
		__sync_fetch_and_add(&blocked_quotes, 1);
		return XDP_DROP;
	}
	if (icmp->type == ICMP_DEST_UNREACH && icmp->code == ICMP_FRAG_NEEDED) {
		if (bpf_ntohs(icmp->un.frag.mtu) < quote_policy.min_mtu) {
			__sync_fetch_and_add(&small_mtu, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
