// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_tail_fw.ks: a stateless firewall as a tail-call chain.
 * fw_entry sends tagged frames to fw_l2 and untagged IPv4 to fw_ipv4. fw_l2 walks up to four
 * VLAN tags (blocked VLANs and too many tags are dropped), fw_ipv4 drops blocked source
 * prefixes (LPM; hits per rule id) and, when configured, loose/strict source routes among the
 * first ten options, and fw_l4 drops blocked TCP/UDP destination ports. Offsets, the outer VLAN
 * and the protocol travel in a per-CPU scratch slot; a failed tail call passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_VID_MASK 0x0fff
#define IP_OFFSET 0x1fff
#define IPOPT_END 0
#define IPOPT_NOOP 1
#define IPOPT_LSRR 0x83
#define IPOPT_SSRR 0x89

#define MAX_VLAN_TAGS 4
#define MAX_OPTIONS 10
#define MAX_L3_OFF 30
#define MAX_L4_OFF 90

enum { S_ENTRY, S_L2, S_IPV4, S_L4, S_MAX };
enum { DR_VLAN, DR_TOO_MANY_TAGS, DR_TRUNCATED, DR_BAD_IP, DR_PREFIX, DR_SOURCE_ROUTE, DR_PORT };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_L2 = 0, PROG_IPV4 = 1, PROG_L4 = 2 };

struct fw_config {
	__u32 max_tags;
	bool drop_source_route;
};

struct fw_config fw SEC(".data.fw") = {
	.max_tags = 2,
	.drop_source_route = true,
};

struct FwState {
	__u32 l3_off;
	__u32 l4_off;
	__u16 outer_vid;
	__u8 tags;
	__u8 protocol;
};

struct PrefixKey {
	__u32 prefixlen;
	__be32 addr;
};

struct PortKey {
	__u16 port;	/* host byte order */
	__u8 protocol;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct FwState);
} fw_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u8);
} blocked_vlans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct PrefixKey);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocked_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct PortKey);
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} prefix_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} fw_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

static __always_inline void count_stage(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&stage_hits, &stage);

	if (v)
		*v += 1;
}

static __always_inline int drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&fw_drops, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_DROP;
}

static __always_inline void count_rule(__u32 rule)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&prefix_hits, &rule);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&prefix_hits, &rule, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&prefix_hits, &rule);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline struct FwState *get_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fw_state, &zero);
}

SEC("xdp")
int fw_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct FwState *st;

	count_stage(S_ENTRY);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	st = get_state();
	if (st) {
		st->l3_off = sizeof(*eth);
		st->l4_off = 0;
		st->outer_vid = 0;
		st->tags = 0;
		st->protocol = 0;
	}
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_8021Q):
	case bpf_htons(ETH_P_8021AD):
		bpf_tail_call(ctx, &prog_array, PROG_L2);
		break;
	case bpf_htons(ETH_P_IP):
		bpf_tail_call(ctx, &prog_array, PROG_IPV4);
		break;
	}
	return XDP_PASS;
}

SEC("xdp")
int fw_l2(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct FwState *st;
	__u32 off = sizeof(*eth), tags = 0;
	__u16 vid, outer = 0;
	__be16 proto;
	int i;

	count_stage(S_L2);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *vlan = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end)
			return drop(DR_TRUNCATED);
		vid = bpf_ntohs(vlan->h_vlan_TCI) & VLAN_VID_MASK;
		if (bpf_map_lookup_elem(&blocked_vlans, &vid))
			return drop(DR_VLAN);
		if (!tags)
			outer = vid;
		tags++;
		proto = vlan->h_vlan_encapsulated_proto;
		off += sizeof(*vlan);
	}
	/* a fifth tag is still a VLAN EtherType here */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD) || tags > fw.max_tags)
		return drop(DR_TOO_MANY_TAGS);
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	st = get_state();
	if (!st)
		return XDP_PASS;
	st->l3_off = off;
	st->outer_vid = outer;
	st->tags = tags;
	bpf_tail_call(ctx, &prog_array, PROG_IPV4);
	return XDP_PASS;
}

SEC("xdp")
int fw_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct PrefixKey key;
	struct FwState *st;
	struct iphdr *ip;
	__u32 l3, hlen, *rule;

	count_stage(S_IPV4);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l3 = st->l3_off;
	if (l3 > MAX_L3_OFF)
		return XDP_PASS;
	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return drop(DR_TRUNCATED);
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip))
		return drop(DR_BAD_IP);
	if ((void *)ip + hlen > data_end)
		return drop(DR_TRUNCATED);

	key.prefixlen = 32;
	key.addr = ip->saddr;
	rule = bpf_map_lookup_elem(&blocked_prefixes, &key);
	if (rule) {
		count_rule(*rule);
		return drop(DR_PREFIX);
	}

	if (hlen > sizeof(*ip) && fw.drop_source_route) {
		__u8 *opt = (void *)ip;
		__u32 off = sizeof(*ip);
		int i;

		for (i = 0; i < MAX_OPTIONS; i++) {
			__u8 *p, kind, len;

			if (off >= hlen)
				break;
			/* clang would drop the next test (off < hlen and the header is in the
			 * frame), but the verifier needs it */
			barrier_var(off);
			p = opt + off;
			if ((void *)(p + 1) > data_end)
				break;
			kind = p[0];
			if (kind == IPOPT_END)
				break;
			if (kind == IPOPT_NOOP) {
				off++;
				continue;
			}
			if (kind == IPOPT_LSRR || kind == IPOPT_SSRR)
				return drop(DR_SOURCE_ROUTE);
			if (off + 1 >= hlen)
				break;
			if ((void *)(p + 2) > data_end)
				break;
			len = p[1];
			if (len < 2)
				break;
			off += len;
		}
	}

	/* later fragments have no L4 header */
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	st->l4_off = l3 + hlen;
	st->protocol = ip->protocol;
	bpf_tail_call(ctx, &prog_array, PROG_L4);
	return XDP_PASS;
}

SEC("xdp")
int fw_l4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct PortKey key;
	struct FwState *st;
	__be16 *ports;
	__u32 l4;

	count_stage(S_L4);
	st = get_state();
	if (!st)
		return XDP_PASS;
	l4 = st->l4_off;
	if (l4 > MAX_L4_OFF)
		return XDP_PASS;
	ports = data + l4;	/* source, dest */
	if ((void *)(ports + 2) > data_end)
		return drop(DR_TRUNCATED);
	key.port = bpf_ntohs(ports[1]);
	key.protocol = st->protocol;
	key.pad = 0;
	if (bpf_map_lookup_elem(&blocked_ports, &key))
		return drop(DR_PORT);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
