// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind13_xdp_gtsm.ks: GTSM (RFC 5082) for BGP (179)
 * and LDP (646) over IPv4 behind an optional 802.1Q tag. Sources in `peers` (host order ->
 * hops allowed, 255 = shut down) must arrive with TTL >= 255 - hops; unknown sources are
 * counted and dropped when configured; segments of a peer with the ports cut off are dropped.
 * Drops are counted per reason and per peer; accepted segments and bytes per peer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define BGP_PORT 179
#define LDP_PORT 646

#define PEER_SHUTDOWN 255

enum {
	SLOT_BGP = 0,
	SLOT_LDP = 1,
};

enum {
	REASON_TTL = 0,
	REASON_UNKNOWN_PEER = 1,
	REASON_TRUNCATED = 2,
	REASON_SHUTDOWN = 3,
};

/* config gtsm { enforce: bool, drop_unknown: bool, check_ldp: bool } */
struct gtsm_config {
	bool enforce;
	bool drop_unknown;
	bool check_ldp;
};

struct gtsm_config gtsm SEC(".data.gtsm") = {
	.enforce = true,
	.drop_unknown = false,
	.check_ldp = true,
};

/* source (host order) -> hops allowed (255: shut down) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} peer_accepted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} peer_dropped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} peer_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drop_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} port_packets SEC(".maps");

/* .bss, in declaration order */
__u64 checked = 0;
__u64 accepted = 0;
__u64 dropped = 0;
__u64 monitored = 0;
__u64 unknown_sources = 0;
__u64 tagged = 0;
__u64 fragments = 0;
__u64 short_ip = 0;

/* m[k] += n on a hash map: atomic add, or insert when missing */
static __always_inline void hash_add(void *map, __u32 key, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val) {
		__sync_fetch_and_add(val, n);
		return;
	}
	if (!bpf_map_update_elem(map, &key, &n, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, &key);
	if (val)
		__sync_fetch_and_add(val, n);
}

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val)
		__sync_fetch_and_add(val, 1);
}

/* a configured peer failed the check: count it, then drop unless only monitoring */
static __always_inline int violation(__u32 src, __u32 reason)
{
	array_inc(&drop_reasons, reason);
	hash_add(&peer_dropped, src, 1);
	if (!gtsm.enforce) {
		__sync_fetch_and_add(&monitored, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&dropped, 1);
	return XDP_DROP;
}

SEC("xdp")
int gtsm_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u16 proto, sport, dport;
	__u32 src, slot;
	__u8 *hops;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		__sync_fetch_and_add(&tagged, 1);
		proto = vh->h_vlan_encapsulated_proto;
		ip = (void *)(vh + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&short_ip, 1);
		return XDP_PASS;
	}
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	/* later fragments carry no ports */
	if (ip->frag_off & bpf_htons(0x1fff)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}
	src = bpf_ntohl(ip->saddr);

	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)tcp + 4 > data_end) {
		if (bpf_map_lookup_elem(&peers, &src))
			return violation(src, REASON_TRUNCATED);
		return XDP_PASS;
	}
	sport = bpf_ntohs(tcp->source);
	dport = bpf_ntohs(tcp->dest);
	if (sport == BGP_PORT || dport == BGP_PORT)
		slot = SLOT_BGP;
	else if (gtsm.check_ldp && (sport == LDP_PORT || dport == LDP_PORT))
		slot = SLOT_LDP;
	else
		return XDP_PASS;
	__sync_fetch_and_add(&checked, 1);
	array_inc(&port_packets, slot);

	hops = bpf_map_lookup_elem(&peers, &src);
	if (!hops) {
		__sync_fetch_and_add(&unknown_sources, 1);
		if (gtsm.drop_unknown) {
			array_inc(&drop_reasons, REASON_UNKNOWN_PEER);
			__sync_fetch_and_add(&dropped, 1);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	if (*hops == PEER_SHUTDOWN)
		return violation(src, REASON_SHUTDOWN);
	/* RFC 5082: a peer n hops away arrives with at least 255 - n */
	if (ip->ttl < 255 - *hops)
		return violation(src, REASON_TTL);
	__sync_fetch_and_add(&accepted, 1);
	hash_add(&peer_accepted, src, 1);
	hash_add(&peer_bytes, src, bpf_ntohs(ip->tot_len));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
