// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_xdp_l4_lb.ks: an XDP layer-4 load balancer. IPv4 TCP/UDP
 * (no fragments) to a VIP:port in `services` gets a backend — the one its 5-tuple already has
 * in the `flows` LRU table, else first_backend + hash(5-tuple) % backend_count, remembered —
 * and is rewritten for it: destination IP with RFC 1624 updates of the IPv4 and TCP/UDP
 * checksums (UDP checksum 0 stays 0), TTL decremented, destination MAC the backend's, source
 * MAC ours; then XDP_TX. Bytes per backend in a per-CPU array; TTL <= 1 and services without
 * a usable backend are dropped; everything else passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct lb_config {
	__u8 src_mac[ETH_ALEN];
};

struct ServiceKey {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct Service {
	__u32 backend_count;
	__u32 first_backend;
};

struct Backend {
	__be32 addr;
	__u8 mac[ETH_ALEN];
};

struct FlowKey {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct lb_config lb SEC(".data.lb") = {
	.src_mac = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ServiceKey);
	__type(value, struct Service);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct Backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct FlowKey);
	__type(value, __u32);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} backend_bytes SEC(".maps");

/* .bss, in this order: new_flows@0, ttl_expired@8, no_backend@16 */
__u64 new_flows = 0;
__u64 ttl_expired = 0;
__u64 no_backend = 0;

static __always_inline __u32 flow_hash(const struct FlowKey *k)
{
	__u32 h = k->saddr * 0x9e3779b1u;

	h ^= k->daddr;
	h ^= h >> 15;
	h *= 0x85ebca6bu;
	h ^= (__u32)k->sport << 16 | k->dport;
	h ^= k->proto;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* RFC 1624 eqn. 3 on words as they lie in the packet. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	return ~csum_fold((__u16)~check + (__u16)~old + new);
}

static __always_inline __u16 csum_replace32(__u16 check, __u32 old, __u32 new)
{
	return ~csum_fold((__u16)~check + (~old & 0xffff) + (~old >> 16) +
			  (new & 0xffff) + (new >> 16));
}

SEC("xdp")
int l4_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct ServiceKey skey = {};
	struct FlowKey key = {};
	struct Service *svc;
	struct Backend *be;
	struct udphdr *udp;
	__be32 old_daddr, new_daddr;
	__u16 old_word, new_word;
	__u32 hlen, idx, *known;
	__u64 *bytes;
	__u8 proto;
	void *l4;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip))
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return XDP_PASS;
	proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	l4 = (void *)ip + hlen;
	if (proto == IPPROTO_TCP) {
		if (l4 + sizeof(struct tcphdr) > data_end)
			return XDP_PASS;
	} else if (l4 + sizeof(struct udphdr) > data_end) {
		return XDP_PASS;
	}
	udp = l4;	/* the ports, for TCP too */

	skey.vip = ip->daddr;
	skey.port = udp->dest;
	skey.proto = proto;
	svc = bpf_map_lookup_elem(&services, &skey);
	if (!svc)
		return XDP_PASS;
	if (svc->backend_count == 0) {
		__sync_fetch_and_add(&no_backend, 1);
		return XDP_DROP;
	}
	if (ip->ttl <= 1) {
		__sync_fetch_and_add(&ttl_expired, 1);
		return XDP_DROP;
	}

	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = udp->source;
	key.dport = udp->dest;
	key.proto = proto;
	known = bpf_map_lookup_elem(&flows, &key);
	if (known) {
		idx = *known;
	} else {
		idx = svc->first_backend + flow_hash(&key) % svc->backend_count;
		bpf_map_update_elem(&flows, &key, &idx, BPF_ANY);
		__sync_fetch_and_add(&new_flows, 1);
	}
	be = bpf_map_lookup_elem(&backends, &idx);
	if (!be || !be->addr) {
		__sync_fetch_and_add(&no_backend, 1);
		return XDP_DROP;
	}

	old_daddr = ip->daddr;
	new_daddr = be->addr;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		tcp->check = csum_replace32(tcp->check, old_daddr, new_daddr);
	} else if (udp->check) {
		__u16 c = csum_replace32(udp->check, old_daddr, new_daddr);

		udp->check = c ? c : 0xffff;
	}

	/* TTL and protocol share a 16-bit word of the header */
	old_word = bpf_htons(ip->ttl << 8 | proto);
	ip->ttl--;
	new_word = bpf_htons(ip->ttl << 8 | proto);
	ip->daddr = new_daddr;
	ip->check = csum_replace16(csum_replace32(ip->check, old_daddr, new_daddr), old_word, new_word);

	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, lb.src_mac, ETH_ALEN);
	bytes = bpf_map_lookup_elem(&backend_bytes, &idx);
	if (bytes)
		*bytes += data_end - data;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
