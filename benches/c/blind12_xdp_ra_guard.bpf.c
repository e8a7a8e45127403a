// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind12_xdp_ra_guard.ks: an IPv6 RA guard. A Router
 * Advertisement directly after the IPv6 header must be whole, carry hop limit 255 and code 0,
 * come from a link-local source (when required), from a router MAC listed in `routers`, with a
 * router lifetime no larger than that router's entry, and well-formed options (at most 16
 * walked) whose SLLA option names the Ethernet source (when checked). Each RA is counted under
 * its reason; rejected RAs are counted per source MAC and dropped when the reason's bit is set
 * in `ra_guard.enforce` (else counted as monitored). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58
#define ND_ROUTER_ADVERT 134

#define OPT_SLLA 1
#define OPT_PREFIX_INFO 3
#define MAX_OPTIONS 16

enum {
	R_ACCEPTED = 0,
	R_TRUNCATED = 1,
	R_HEADER = 2,
	R_SOURCE = 3,
	R_ROUTER = 4,
	R_LIFETIME = 5,
	R_OPTION = 6,
	R_SLLA = 7,
};

/* config ra_guard { enforce: u8, require_link_local: bool, check_slla: bool } */
struct ra_guard_config {
	__u8 enforce;
	bool require_link_local;
	bool check_slla;
};

struct ra_guard_config ra_guard SEC(".data.ra_guard") = {
	.enforce = 0xFE,
	.require_link_local = true,
	.check_slla = true,
};

/* router MAC -> largest router lifetime it may announce */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} routers SEC(".maps");

/* reason -> RAs */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ra_verdicts SEC(".maps");

/* source MAC of rejected RAs -> RAs */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} rogue_macs SEC(".maps");

/* .bss, in declaration order */
__u64 ra_total = 0;
__u64 other_icmpv6 = 0;
__u64 prefix_options = 0;
__u64 monitored = 0;

/* the 48-bit MAC at m as a number, first byte most significant */
static __always_inline __u64 mac_to_u64(const __u8 *m)
{
	return (__u64)m[0] << 40 | (__u64)m[1] << 32 | (__u64)m[2] << 24 |
	       (__u64)m[3] << 16 | (__u64)m[4] << 8 | m[5];
}

/* walks the options after the RA header; returns the reason of the first bad one */
static __always_inline __u32 check_options(__u8 *icmp, void *data_end, __u32 plen, __u64 mac)
{
	__u32 off = 16, n;

	for (n = 0; n < MAX_OPTIONS && off + 2 <= plen; n++) {
		__u8 *opt = icmp + (off & 0xffff);
		__u8 kind, units;

		if ((void *)(opt + 2) > data_end)
			return R_TRUNCATED;
		kind = opt[0];
		units = opt[1];
		if (units == 0 || off + units * 8 > plen)
			return R_OPTION;
		if (kind == OPT_PREFIX_INFO) {
			__sync_fetch_and_add(&prefix_options, 1);
		} else if (kind == OPT_SLLA && units == 1 && ra_guard.check_slla) {
			if ((void *)(opt + 8) > data_end)
				return R_TRUNCATED;
			if (mac_to_u64(opt + 2) != mac)
				return R_SLLA;
		}
		off += units * 8;
	}
	return R_ACCEPTED;
}

SEC("xdp")
int ra_guard_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct ra_msg *ra = (void *)(ip6 + 1);
	__u8 *icmp = (__u8 *)ra;
	__u32 reason, plen, key, *max_life;
	__u64 mac, one = 1, *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_ICMPV6)
		return XDP_PASS;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (ra->icmph.icmp6_type != ND_ROUTER_ADVERT) {
		__sync_fetch_and_add(&other_icmpv6, 1);
		return XDP_PASS;
	}

	__sync_fetch_and_add(&ra_total, 1);
	mac = mac_to_u64(eth->h_source);
	plen = bpf_ntohs(ip6->payload_len);

	if (plen < 16 || (void *)(ra + 1) > data_end || (void *)(icmp + plen) > data_end)
		reason = R_TRUNCATED;
	else if (ip6->hop_limit != 255 || ra->icmph.icmp6_code != 0)
		reason = R_HEADER;
	else if (ra_guard.require_link_local &&
		 !(ip6->saddr.in6_u.u6_addr8[0] == 0xfe &&
		   (ip6->saddr.in6_u.u6_addr8[1] & 0xc0) == 0x80))
		reason = R_SOURCE;
	else if (!(max_life = bpf_map_lookup_elem(&routers, &mac)))
		reason = R_ROUTER;
	else if (bpf_ntohs(ra->icmph.icmp6_dataun.u_nd_ra.rt_lifetime) > *max_life)
		reason = R_LIFETIME;
	else
		reason = check_options(icmp, data_end, plen, mac);

	key = reason;
	cnt = bpf_map_lookup_elem(&ra_verdicts, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (reason == R_ACCEPTED)
		return XDP_PASS;

	cnt = bpf_map_lookup_elem(&rogue_macs, &mac);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&rogue_macs, &mac, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&rogue_macs, &mac);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	if ((ra_guard.enforce >> reason) & 1)
		return XDP_DROP;
	__sync_fetch_and_add(&monitored, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
