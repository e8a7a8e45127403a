// C twin of blind15_xdp_tail_proto_split.ks: an XDP entry that parses L2/L3 and tail-calls
// one program per L4 protocol (prog_array: 0 tcp_stage, 1 udp_stage, 2 icmp_stage).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_ACK 0x10

enum {
	ERR_SHORT = 1,  /* drop */
	ERR_BAD = 2,    /* drop */
	ERR_NOT_IP = 3, /* pass */
	ERR_FRAG = 4,   /* pass */
};

enum { PROG_TCP = 0, PROG_UDP = 1, PROG_ICMP = 2 };

struct l3_info {
	__u32 l4_off;
	__u8 proto;
	bool is_v6;
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} parse_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} tcp_dports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} udp_dports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} icmp_types SEC(".maps");

__u64 other_l4 = 0;
__u64 syn_seen = 0;
__u64 udp_blocked = 0;
__u64 redirects_dropped = 0;

struct split_config {
	bool drop_redirects;
	__u16 blocked_udp_port;
};

struct split_config split SEC(".data.split") = {
	.drop_redirects = true,
	.blocked_udp_port = 0,
};

static __always_inline void array_inc(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, __u16 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	__u64 one = 1;

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST) == 0)
		return;
	/* lost a race with another CPU inserting the same key */
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Returns 0 and fills *info, or an ERR_* code. */
static __always_inline int parse_l3(struct xdp_md *ctx, struct l3_info *info)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return ERR_SHORT;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return ERR_SHORT;
		proto = vlan->h_vlan_encapsulated_proto;
		off = sizeof(*eth) + sizeof(*vlan);
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return ERR_SHORT;
		ihl = ip->ihl;
		if (ihl < 5)
			return ERR_BAD;
		if (ip->frag_off & bpf_htons(0x1FFF))
			return ERR_FRAG;
		info->l4_off = off + ihl * 4;
		info->proto = ip->protocol;
		info->is_v6 = false;
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end)
			return ERR_SHORT;
		info->l4_off = off + sizeof(*ip6);
		info->proto = ip6->nexthdr;
		info->is_v6 = true;
		return 0;
	}
	return ERR_NOT_IP;
}

/* Counts a parse error and gives its verdict. */
static __always_inline int parse_error(int err)
{
	array_inc(&parse_errors, err);
	return err == ERR_SHORT || err == ERR_BAD ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int split_entry(struct xdp_md *ctx)
{
	struct l3_info info;
	int err;

	array_inc(&stage_hits, 0);
	err = parse_l3(ctx, &info);
	if (err)
		return parse_error(err);

	switch (info.proto) {
	case IPPROTO_TCP_:
		bpf_tail_call(ctx, &prog_array, PROG_TCP);
		return XDP_PASS;
	case IPPROTO_UDP_:
		bpf_tail_call(ctx, &prog_array, PROG_UDP);
		return XDP_PASS;
	case IPPROTO_ICMP_:
		if (info.is_v6)
			break;
		bpf_tail_call(ctx, &prog_array, PROG_ICMP);
		return XDP_PASS;
	case IPPROTO_ICMPV6_:
		if (!info.is_v6)
			break;
		bpf_tail_call(ctx, &prog_array, PROG_ICMP);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&other_l4, 1);
	return XDP_PASS;
}

SEC("xdp")
int tcp_stage(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct l3_info info;
	struct tcphdr *tcp;
	__u32 doff;
	__u8 flags;
	int err;

	array_inc(&stage_hits, 1);
	err = parse_l3(ctx, &info);
	if (err)
		return parse_error(err);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	tcp = data + (info.l4_off & 0xff); /* l4_off <= 18 + 60 */
	if ((void *)(tcp + 1) > data_end)
		return parse_error(ERR_SHORT);
	doff = tcp->doff;
	if (doff < 5)
		return parse_error(ERR_BAD);
	if ((void *)tcp + doff * 4 > data_end)
		return parse_error(ERR_SHORT);
	flags = ((__u8 *)tcp)[13];
	if ((flags & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN))
		return parse_error(ERR_BAD);
	if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		__sync_fetch_and_add(&syn_seen, 1);
	hash_inc(&tcp_dports, bpf_ntohs(tcp->dest));
	return XDP_PASS;
}

SEC("xdp")
int udp_stage(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct l3_info info;
	struct udphdr *udp;
	__u16 dport;
	int err;

	array_inc(&stage_hits, 2);
	err = parse_l3(ctx, &info);
	if (err)
		return parse_error(err);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	udp = data + (info.l4_off & 0xff);
	if ((void *)(udp + 1) > data_end)
		return parse_error(ERR_SHORT);
	if (bpf_ntohs(udp->len) < 8)
		return parse_error(ERR_BAD);
	dport = bpf_ntohs(udp->dest);
	hash_inc(&udp_dports, dport);
	if (split.blocked_udp_port != 0 && dport == split.blocked_udp_port) {
		__sync_fetch_and_add(&udp_blocked, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int icmp_stage(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct l3_info info;
	bool redirect;
	__u8 *icmp;
	__u32 slot;
	int err;

	array_inc(&stage_hits, 3);
	err = parse_l3(ctx, &info);
	if (err)
		return parse_error(err);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	icmp = data + (info.l4_off & 0xff);
	if ((void *)(icmp + 4) > data_end)
		return parse_error(ERR_SHORT);
	slot = icmp[0];
	if (info.is_v6) {
		redirect = slot == 137;
		slot += 256;
	} else {
		redirect = slot == 5;
	}
	array_inc(&icmp_types, slot);
	if (redirect && split.drop_redirects) {
		__sync_fetch_and_add(&redirects_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
