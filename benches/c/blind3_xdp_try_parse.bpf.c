// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_xdp_try_parse.ks: strict IPv4 parser with
 * per-protocol byte accounting. The .ks helpers throw the reason a frame cannot be parsed and
 * the program catches it; here the parser returns the reason (0 when the packet is fine). Every
 * frame is counted once (the .ks program's defer). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100

enum parse_error {
	PARSE_OK = 0,
	TRUNCATED_ETH = 1,
	NOT_IPV4 = 2,
	TRUNCATED_IP = 3,
	BAD_IHL = 4,
	TRUNCATED_L4 = 5,
	PARSE_ERROR_MAX,
};

struct ipv4_info {
	__u32 l4_off;
	__u16 tot_len;
	__u8 protocol;
};

struct proto_stats {
	__u64 packets;
	__u64 bytes;
};

/* config parser { drop_non_ipv4: bool = false } */
struct parser_config {
	bool drop_non_ipv4;
};

struct parser_config parser SEC(".data.parser") = {
	.drop_non_ipv4 = false,
};

/* indexed by enum parse_error */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PARSE_ERROR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} parse_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8);
	__type(value, struct proto_stats);
} proto_stats SEC(".maps");

__u64 frames_seen = 0;

/* The offset of the network header, after an optional 802.1Q tag; IPv4 only. */
static __always_inline int parse_eth(void *data, void *data_end, __u32 *l3_off)
{
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return TRUNCATED_ETH;
	proto = bpf_ntohs(eth->h_proto);
	*l3_off = sizeof(*eth);
	if (proto == ETH_P_8021Q) {
		vlan = (void *)(eth + 1);
		if ((void *)(vlan + 1) > data_end)
			return TRUNCATED_ETH;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		*l3_off += sizeof(*vlan);
	}
	if (proto != ETH_P_IP)
		return NOT_IPV4;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(void *data, void *data_end, __u32 l3_off,
				      struct ipv4_info *info)
{
	struct iphdr *ip = data + l3_off;
	__u32 hlen;

	if ((void *)(ip + 1) > data_end)
		return TRUNCATED_IP;
	if (ip->ihl < 5)
		return BAD_IHL;
	hlen = ip->ihl * 4;
	if ((void *)ip + hlen > data_end)
		return TRUNCATED_IP;	/* options cut short */
	info->l4_off = l3_off + hlen;
	info->tot_len = bpf_ntohs(ip->tot_len);
	info->protocol = ip->protocol;
	return PARSE_OK;
}

/* The transport header must be complete for the protocols we know. */
static __always_inline int check_l4(void *data, void *data_end, const struct ipv4_info *info)
{
	__u32 need;

	switch (info->protocol) {
	case IPPROTO_TCP:
		need = sizeof(struct tcphdr);
		break;
	case IPPROTO_UDP:
		need = sizeof(struct udphdr);
		break;
	case IPPROTO_ICMP:
		need = 8;
		break;
	default:
		need = 0;
	}
	if (data + info->l4_off + need > data_end)
		return TRUNCATED_L4;
	return PARSE_OK;
}

static __always_inline int parse(void *data, void *data_end, struct ipv4_info *info)
{
	__u32 l3_off;
	int err;

	err = parse_eth(data, data_end, &l3_off);
	if (err)
		return err;
	err = parse_ipv4(data, data_end, l3_off, info);
	if (err)
		return err;
	return check_l4(data, data_end, info);
}

SEC("xdp")
int try_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv4_info info;
	struct proto_stats *st;
	__u32 err;
	__u64 *cnt;

	__sync_fetch_and_add(&frames_seen, 1);

	err = parse(data, data_end, &info);
	if (err == PARSE_OK) {
		st = bpf_map_lookup_elem(&proto_stats, &info.protocol);
		if (st) {
			st->packets += 1;
			st->bytes += info.tot_len;
		} else {
			struct proto_stats fresh = { .packets = 1, .bytes = info.tot_len };

			bpf_map_update_elem(&proto_stats, &info.protocol, &fresh, BPF_ANY);
		}
		return XDP_PASS;
	}

	cnt = bpf_map_lookup_elem(&parse_errors, &err);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (err == NOT_IPV4) {
		if (!parser.drop_non_ipv4)
			return XDP_PASS;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
