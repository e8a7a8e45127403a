// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_l4_lb.ks: a tiny XDP L4 load balancer. TCP/UDP
 * to the configured VIP:port is sent back out (XDP_TX) to backend (5-tuple hash % count), with
 * the destination address rewritten, the IPv4 and L4 checksums fixed incrementally (RFC 1624)
 * and the MACs swapped. Per-backend packet and byte counters. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define MAX_BACKENDS 16
#define FNV_OFFSET 0x811C9DC5u
#define FNV_PRIME 0x01000193u

enum { STAT_FORWARDED = 0, STAT_NOT_FOR_US = 1, STAT_NO_BACKEND = 2, STAT_TRUNCATED = 3,
       STAT_SKIPPED = 4, STAT_MAX };

/* config lb { vip: u32 = 0, num_backends: u32 = 0, port: u16 = 80 } */
struct lb_config {
	__be32 vip;
	__u32 num_backends;
	__u16 port;		/* host order */
};

struct lb_config lb SEC(".data.lb") = {
	.vip = 0,
	.num_backends = 0,
	.port = 80,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __be32);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u64);
} backend_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u64);
} backend_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lb_stats SEC(".maps");

static __always_inline void add(void *map, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline __u32 flow_hash(__u32 saddr, __u32 daddr, __u32 ports, __u8 proto)
{
	__u32 h = FNV_OFFSET;

	h = (h ^ saddr) * FNV_PRIME;
	h = (h ^ daddr) * FNV_PRIME;
	h = (h ^ ports) * FNV_PRIME;
	h = (h ^ proto) * FNV_PRIME;
	/* murmur3 fmix32 */
	h = (h ^ (h >> 16)) * 0x85EBCA6Bu;
	h = (h ^ (h >> 13)) * 0xC2B2AE35u;
	return h ^ (h >> 16);
}

/* RFC 1624 eqn. 3 on a 32-bit field, on the words as stored */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (~from & 0xffff) + (~from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int l4_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	struct tcphdr *tcp;
	__u32 n, slot;
	__be32 old_addr, new_addr, *b;
	__u8 mac[ETH_ALEN];
	__u8 proto;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = ip->protocol;
	if (ip->daddr != lb.vip || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
		add(&lb_stats, STAT_NOT_FOR_US, 1);
		return XDP_PASS;
	}
	/* IP options and fragments go to the stack */
	if (*(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(0x3FFF))) {
		add(&lb_stats, STAT_SKIPPED, 1);
		return XDP_PASS;
	}
	/* tcp and udp share the ports; the checksum is at a different place */
	tcp = (void *)(ip + 1);
	udp = (void *)(ip + 1);
	if ((proto == IPPROTO_TCP && (void *)(tcp + 1) > data_end) || (void *)(udp + 1) > data_end) {
		add(&lb_stats, STAT_TRUNCATED, 1);
		return XDP_DROP;
	}
	if (bpf_ntohs(udp->dest) != lb.port) {
		add(&lb_stats, STAT_NOT_FOR_US, 1);
		return XDP_PASS;
	}

	n = lb.num_backends;
	if (n == 0 || n > MAX_BACKENDS)
		goto no_backend;
	slot = flow_hash(ip->saddr, ip->daddr, ((__u32)udp->source << 16) | udp->dest, proto) % n;
	b = bpf_map_lookup_elem(&backends, &slot);
	if (!b || !*b)
		goto no_backend;

	old_addr = ip->daddr;
	new_addr = *b;
	ip->daddr = new_addr;
	ip->check = csum_replace4(ip->check, old_addr, new_addr);
	if (proto == IPPROTO_TCP) {
		if ((void *)(tcp + 1) > data_end)
			return XDP_DROP;
		tcp->check = csum_replace4(tcp->check, old_addr, new_addr);
	} else if (udp->check) {
		/* zero means "no checksum"; a computed zero is sent as 0xffff */
		__u16 c = csum_replace4(udp->check, old_addr, new_addr);

		udp->check = c ? c : 0xffff;
	}

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	add(&backend_packets, slot, 1);
	add(&backend_bytes, slot, data_end - data);
	add(&lb_stats, STAT_FORWARDED, 1);
	return XDP_TX;

no_backend:
	add(&lb_stats, STAT_NO_BACKEND, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
