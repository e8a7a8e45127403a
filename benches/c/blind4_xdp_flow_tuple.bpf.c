// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_flow_tuple.ks: per-flow (5-tuple) packet/byte accounting
 * for IPv4 TCP and UDP in an LRU map, with the first-seen TCP flags; malformed packets are counted
 * per reason and dropped, fragments and other protocols counted and passed. The .ks throw/catch
 * becomes parsers returning the reason code; the deferred ipv4_seen count is done once the frame
 * is known to be IPv4 (every exit after that point runs it). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#define R_IP_SHORT 1
#define R_BAD_HEADER 2
#define R_FRAGMENT 3
#define R_UNSUPPORTED 4
#define R_L4_SHORT 5
#define R_BAD_DOFF 6

struct FlowKey {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct FlowStats {
	__u64 packets;
	__u64 bytes;
	__u8 first_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct FlowKey);
	__type(value, struct FlowStats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} parse_errors SEC(".maps");

__u64 ipv4_seen = 0;
__u64 non_ipv4 = 0;

static __always_inline int parse_ipv4(void *data, void *data_end, struct FlowKey *key,
				      __u32 *l4_off, __u32 *ip_len)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 hlen, tot;

	if ((void *)(ip + 1) > data_end)
		return R_IP_SHORT;
	if (ip->version != 4)
		return R_BAD_HEADER;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (hlen < sizeof(*ip) || tot < hlen)
		return R_BAD_HEADER;
	if (data + sizeof(struct ethhdr) + tot > data_end)
		return R_IP_SHORT;
	if (ip->frag_off & bpf_htons(0x1fff))
		return R_FRAGMENT;
	key->saddr = ip->saddr;
	key->daddr = ip->daddr;
	key->proto = ip->protocol;
	*l4_off = sizeof(struct ethhdr) + hlen;
	*ip_len = tot;
	return 0;
}

static __always_inline int parse_tcp(void *data, void *data_end, __u32 off,
				     struct FlowKey *key, __u8 *flags)
{
	struct tcphdr *tcp = data + off;

	if ((void *)(tcp + 1) > data_end)
		return R_L4_SHORT;
	if (tcp->doff < 5)
		return R_BAD_DOFF;
	key->sport = bpf_ntohs(tcp->source);
	key->dport = bpf_ntohs(tcp->dest);
	*flags = ((__u8 *)tcp)[13];
	return 0;
}

static __always_inline int parse_udp(void *data, void *data_end, __u32 off,
				     struct FlowKey *key, __u8 *flags)
{
	struct udphdr *udp = data + off;

	if ((void *)(udp + 1) > data_end)
		return R_L4_SHORT;
	key->sport = bpf_ntohs(udp->source);
	key->dport = bpf_ntohs(udp->dest);
	*flags = 0;
	return 0;
}

SEC("xdp")
int flow_tuple(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct FlowKey key;
	struct FlowStats *st;
	__u32 l4_off, ip_len, reason;
	__u8 flags;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&ipv4_seen, 1);

	__builtin_memset(&key, 0, sizeof(key));
	reason = parse_ipv4(data, data_end, &key, &l4_off, &ip_len);
	if (reason)
		goto fail;
	if (key.proto == IPPROTO_TCP)
		reason = parse_tcp(data, data_end, l4_off, &key, &flags);
	else if (key.proto == IPPROTO_UDP)
		reason = parse_udp(data, data_end, l4_off, &key, &flags);
	else
		reason = R_UNSUPPORTED;
	if (reason)
		goto fail;

	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {
		st->packets += 1;
		st->bytes += ip_len;
	} else {
		struct FlowStats init;

		__builtin_memset(&init, 0, sizeof(init));
		init.packets = 1;
		init.bytes = ip_len;
		init.first_flags = flags;
		bpf_map_update_elem(&flows, &key, &init, BPF_ANY);
	}
	return XDP_PASS;

fail:
	cnt = bpf_map_lookup_elem(&parse_errors, &reason);
	if (cnt)
		*cnt += 1;
	return (reason == R_FRAGMENT || reason == R_UNSUPPORTED) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
