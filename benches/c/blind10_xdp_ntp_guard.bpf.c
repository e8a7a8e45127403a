// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind10_xdp_ntp_guard.ks: for IPv4 UDP to or from
 * port 123, drops NTP versions outside 1..4, mode-7 requests from sources not allowed, mode-7
 * responses (counted per destination), and mode-6 traffic past a per-source limit; counts
 * oversized mode-4 responses per destination (dropping them when configured) and packets per
 * mode. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET 0x1fff
#define NTP_PORT 123

#define MODE_SERVER 4
#define MODE_CONTROL 6
#define MODE_PRIVATE 7
#define PRIVATE_RESPONSE 0x80

/* config ntp_policy { control_limit: u32, max_response: u16, drop_suspects: bool } */
struct ntp_policy_config {
	__u32 control_limit;
	__u16 max_response;
	bool drop_suspects;
};

struct ntp_policy_config ntp_policy SEC(".data.ntp_policy") = {
	.control_limit = 16,
	.max_response = 68,
	.drop_suspects = false,
};

/* mode -> packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ntp_modes SEC(".maps");

/* source (host order) -> mode-6 packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} control_counts SEC(".maps");

/* sources (host order) allowed to send mode 7 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} private_allowed SEC(".maps");

/* destination (host order) -> suspect responses */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} amp_suspects SEC(".maps");

/* .bss, in declaration order */
__u64 ntp_packets = 0;
__u64 bad_version = 0;
__u64 private_dropped = 0;
__u64 control_dropped = 0;
__u64 truncated = 0;

/* m[addr] += 1 on a hash map; returns the new count */
static __always_inline __u64 count_addr(void *map, __u32 addr)
{
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(map, &addr);
	if (val)
		return __sync_add_and_fetch(val, 1);
	if (!bpf_map_update_elem(map, &addr, &one, BPF_NOEXIST))
		return 1;
	val = bpf_map_lookup_elem(map, &addr);
	if (val)
		return __sync_add_and_fetch(val, 1);
	return 0;
}

SEC("xdp")
int ntp_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u8 *ntp, first, version, mode;
	__u32 mode_key, src, dst;
	__u16 udp_len;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	/* fragments after the first carry no UDP header */
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return XDP_PASS;

	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return XDP_DROP;
	}
	if (udp->source != bpf_htons(NTP_PORT) && udp->dest != bpf_htons(NTP_PORT))
		return XDP_PASS;
	udp_len = bpf_ntohs(udp->len);
	ntp = (void *)(udp + 1);
	if (udp_len < 9 || (void *)(ntp + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&ntp_packets, 1);

	first = *ntp;
	version = (first >> 3) & 0x07;
	mode = first & 0x07;
	if (version < 1 || version > 4) {
		__sync_fetch_and_add(&bad_version, 1);
		return XDP_DROP;
	}
	mode_key = mode;
	cnt = bpf_map_lookup_elem(&ntp_modes, &mode_key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	src = bpf_ntohl(ip->saddr);
	dst = bpf_ntohl(ip->daddr);
	if (mode == MODE_PRIVATE) {
		if (first & PRIVATE_RESPONSE) {
			count_addr(&amp_suspects, dst);
			return XDP_DROP;
		}
		if (!bpf_map_lookup_elem(&private_allowed, &src)) {
			__sync_fetch_and_add(&private_dropped, 1);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	if (mode == MODE_CONTROL) {
		if (count_addr(&control_counts, src) > ntp_policy.control_limit) {
			__sync_fetch_and_add(&control_dropped, 1);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	if (mode == MODE_SERVER && udp_len - 8 > ntp_policy.max_response) {
		count_addr(&amp_suspects, dst);
		if (ntp_policy.drop_suspects)
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
