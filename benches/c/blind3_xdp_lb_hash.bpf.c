// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_xdp_lb_hash.ks: a small XDP L4 load balancer.
 * TCP/UDP to the configured VIP:port is hashed on its 5-tuple and sent back out (XDP_TX) to a
 * backend slot (hash % num_backends): destination MAC and address rewritten (the old destination
 * MAC becomes the source), IPv4 and TCP/UDP checksums updated incrementally (RFC 1624 eqn. 3).
 * Per-backend packet/byte counters in a per-CPU array, drop/pass reasons in an array. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define MAX_BACKENDS 8

enum LbStat {
	Forwarded = 0,
	NotVip = 1,
	NotTcpUdp = 2,
	Fragment = 3,
	WrongPort = 4,
	NoBackend = 5,
	Truncated = 6,
};

/* address in host order (0 = unused slot); 12 bytes, 2 of them tail padding */
struct Backend {
	__u32 addr;
	__u8 mac[ETH_ALEN];
};

struct BackendStats {
	__u64 packets;
	__u64 bytes;
};

/* config lb { vip: u32 = 0, port: u16 = 80, num_backends: u32 = 0 } */
struct lb_config {
	__u32 vip;		/* host order */
	__u16 port;		/* host order */
	__u32 num_backends;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct Backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct BackendStats);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} lb_stats SEC(".maps");

struct lb_config lb SEC(".data.lb") = {
	.vip = 0,
	.port = 80,
	.num_backends = 0,
};

__u64 malformed = 0;
__u32 last_slot = 0;

static __always_inline int stat(__u32 idx, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&lb_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
	return verdict;
}

static __always_inline __u32 tuple_hash(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport,
					__u8 proto)
{
	__u32 h = saddr * 0x9E3779B1u;

	h ^= (daddr << 7) | (daddr >> 25);
	h *= 0x85EBCA77u;
	h ^= ((__u32)sport << 16) | dport;
	h ^= h >> 15;
	h *= 0xC2B2AE3Du;
	h ^= proto;
	h ^= h >> 13;
	h *= 0x27D4EB2Fu;
	return h ^ (h >> 16);
}

/* RFC 1624 eqn. 3 for a 32-bit field, host order */
static __always_inline __u16 csum_replace32(__u16 check, __u32 prev, __u32 next)
{
	__u32 sum = (__u16)~check;

	sum += (~prev >> 16) + (~prev & 0xffff);
	sum += (next >> 16) + (next & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int lb_hash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct BackendStats *s;
	struct Backend *b;
	__u32 daddr, saddr, n, slot, target;
	__u16 sport, dport;
	__sum16 *l4_check;
	__u8 *l4;
	__u8 proto;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	daddr = bpf_ntohl(ip->daddr);
	if (daddr != lb.vip)
		return stat(NotVip, XDP_PASS);
	proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return stat(NotTcpUdp, XDP_PASS);
	if (ip->frag_off & bpf_htons(0x3FFF))
		return stat(Fragment, XDP_PASS);

	/* the transport header starts after the IP options, if any; TCP and UDP have their
	 * ports in the same place, their checksums not */
	l4 = (__u8 *)ip + ip->ihl * 4;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)l4;

		if ((void *)(tcp + 1) > data_end)
			return stat(Truncated, XDP_DROP);
		l4_check = &tcp->check;
	} else {
		struct udphdr *udp = (void *)l4;

		if ((void *)(udp + 1) > data_end)
			return stat(Truncated, XDP_DROP);
		l4_check = &udp->check;
	}
	sport = bpf_ntohs(((struct udphdr *)l4)->source);
	dport = bpf_ntohs(((struct udphdr *)l4)->dest);
	if (dport != lb.port)
		return stat(WrongPort, XDP_PASS);

	saddr = bpf_ntohl(ip->saddr);
	n = lb.num_backends;
	if (n == 0)
		return stat(NoBackend, XDP_PASS);
	slot = tuple_hash(saddr, daddr, sport, dport, proto) % n;
	b = bpf_map_lookup_elem(&backends, &slot);
	if (!b || b->addr == 0)
		return stat(NoBackend, XDP_PASS);

	target = b->addr;
	ip->daddr = bpf_htonl(target);
	ip->check = bpf_htons(csum_replace32(bpf_ntohs(ip->check), daddr, target));
	if (proto == IPPROTO_TCP) {
		*l4_check = bpf_htons(csum_replace32(bpf_ntohs(*l4_check), daddr, target));
	} else if (*l4_check) {
		/* UDP: zero means "no checksum"; a computed zero is sent as 0xffff */
		__u16 c = csum_replace32(bpf_ntohs(*l4_check), daddr, target);

		*l4_check = bpf_htons(c ? c : 0xffff);
	}

	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, b->mac, ETH_ALEN);

	s = bpf_map_lookup_elem(&backend_stats, &slot);
	if (s) {
		/* per-CPU slot: plain adds */
		s->packets += 1;
		s->bytes += data_end - data;
	}
	stat(Forwarded, 0);
	last_slot = slot;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
