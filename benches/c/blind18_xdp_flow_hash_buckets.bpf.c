// SPDX-License-Identifier: GPL-2.0
/* Flow-hash bucket accounting at XDP
 * (hand-written twin of blind18_xdp_flow_hash_buckets.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100

#define NBUCKETS	1024
#define JHASH_INITVAL	0xdeadbeef

#define TCP_FIN		0x01
#define TCP_SYN		0x02
#define TCP_RST		0x04
#define TCP_ACK		0x10

struct vlan_hdr_s {
	__u16 tci;
	__u16 inner_proto;
};

struct tcp_head {
	__u16 source;
	__u16 dest;
	__u32 seq;
	__u32 ack_seq;
	__u8 off_res;
	__u8 flags;
	__u16 window;
	__u16 check;
	__u16 urg_ptr;
};

struct udp_head {
	__u16 source;
	__u16 dest;
	__u16 len;
	__u16 check;
};

struct flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags;
};

struct bucket_stats {
	__u64 packets;
	__u64 bytes;
};

enum tcp_kind {
	KIND_SYN = 0,
	KIND_SYNACK = 1,
	KIND_FIN = 2,
	KIND_RST = 3,
	KIND_OTHER = 4,
};

enum parse_error {
	NOT_IPV4 = 1,
	MALFORMED = 2,
};

struct hashing_config {
	__u32 seed;
};

struct hashing_config hashing SEC(".data.hashing") = {
	.seed = 0x9e3779b9,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NBUCKETS);
	__type(key, __u32);
	__type(value, struct bucket_stats);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} tcp_kinds SEC(".maps");

__u64 packets_seen = 0;
__u64 non_ipv4 = 0;
__u64 malformed = 0;

static __always_inline __u32 rol32(__u32 x, __u32 k)
{
	return (x << k) | (x >> (32 - k));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + 12 + initval;
	b += JHASH_INITVAL + 12 + initval;
	c += JHASH_INITVAL + 12 + initval;

	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static __always_inline __u32 flow_hash(const struct flow *f, __u32 seed)
{
	__u32 ports = ((__u32)f->sport << 16) | f->dport;

	return jhash_3words(f->saddr, f->daddr, ports, seed ^ f->proto);
}

/* Extract the 5-tuple; returns 0, NOT_IPV4 or MALFORMED. */
static __always_inline int parse_flow(struct xdp_md *ctx, struct flow *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 l3 = sizeof(*eth), l4;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return NOT_IPV4;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr_s *vlan = data + sizeof(*eth);

		if ((void *)(vlan + 1) > data_end)
			return MALFORMED;
		proto = vlan->inner_proto;
		l3 += sizeof(*vlan);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return NOT_IPV4;

	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return MALFORMED;

	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->sport = 0;
	f->dport = 0;
	f->proto = ip->protocol;
	f->tcp_flags = 0;
	/* Only the first fragment carries the transport header. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;

	l4 = l3 + ip->ihl * 4;
	if (f->proto == IPPROTO_TCP) {
		struct tcp_head *tcp = data + l4;

		if ((void *)(tcp + 1) > data_end)
			return MALFORMED;
		f->sport = tcp->source;
		f->dport = tcp->dest;
		f->tcp_flags = tcp->flags;
	} else if (f->proto == IPPROTO_UDP) {
		struct udp_head *udp = data + l4;

		if ((void *)(udp + 1) > data_end)
			return MALFORMED;
		f->sport = udp->source;
		f->dport = udp->dest;
	}
	return 0;
}

SEC("xdp")
int flow_hash_buckets(struct xdp_md *ctx)
{
	struct bucket_stats *b;
	struct flow f;
	__u32 idx, kind;
	int err;

	__sync_fetch_and_add(&packets_seen, 1);

	err = parse_flow(ctx, &f);
	if (err == NOT_IPV4) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return XDP_PASS;
	}
	if (err) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	idx = flow_hash(&f, hashing.seed) & (NBUCKETS - 1);
	b = bpf_map_lookup_elem(&buckets, &idx);
	if (b) {
		b->packets += 1;
		b->bytes += ctx->data_end - ctx->data;
	}

	if (f.proto == IPPROTO_TCP) {
		__u64 *cnt;

		switch (f.tcp_flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK)) {
		case TCP_SYN:			kind = KIND_SYN; break;
		case TCP_SYN | TCP_ACK:		kind = KIND_SYNACK; break;
		case TCP_FIN:
		case TCP_FIN | TCP_ACK:		kind = KIND_FIN; break;
		case TCP_RST:
		case TCP_RST | TCP_ACK:		kind = KIND_RST; break;
		default:			kind = KIND_OTHER; break;
		}
		cnt = bpf_map_lookup_elem(&tcp_kinds, &kind);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
