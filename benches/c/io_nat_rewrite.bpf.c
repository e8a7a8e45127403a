// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_nat_rewrite.ks: destination NAT for service VIPs
 * on tc ingress. The rule's backend address and port are written with bpf_skb_store_bytes
 * after updating the IP and L4 checksums with bpf_l3_csum_replace/bpf_l4_csum_replace. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0

/* byte offsets in a frame whose IPv4 header has no options */
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define L4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define DPORT_OFF (L4_OFF + offsetof(struct udphdr, dest))
#define TCP_CSUM_OFF (L4_OFF + offsetof(struct tcphdr, check))
#define UDP_CSUM_OFF (L4_OFF + offsetof(struct udphdr, check))
#define ETH_HLEN 14

enum { STAT_TRANSLATED = 0, STAT_NO_RULE = 1, STAT_SKIPPED = 2 };

/* addresses and ports as on the wire (network byte order); 8 bytes, 1 of padding */
struct NatKey {
	__be32 addr;
	__be16 port;
	__u8 proto;
};

struct NatTarget {
	__be32 addr;
	__be16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct NatKey);
	__type(value, struct NatTarget);
} nat_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct NatKey);
	__type(value, __u64);
} rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} nat_stats SEC(".maps");

static __always_inline void count_stat(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&nat_stats, &stat);

	if (v)
		*v += 1;
}

/* rule_hits[key] += 1: add to the entry, creating it when missing */
static __always_inline void count_hit(struct NatKey *key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&rule_hits, key);

	if (!v) {
		if (!bpf_map_update_elem(&rule_hits, key, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&rule_hits, key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

SEC("tcx/ingress")
int dnat_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *ports = (void *)(ip + 1);	/* source and dest: same place in TCP */
	struct NatTarget *target;
	__u32 csum_off = TCP_CSUM_OFF;
	__u64 csum_flags = 0;
	struct NatKey key;
	__be32 old_addr, new_addr;
	__be16 old_port, new_port;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP) {
		csum_off = UDP_CSUM_OFF;
		csum_flags = BPF_F_MARK_MANGLED_0;	/* a zero UDP checksum stays zero */
	} else if (ip->protocol != IPPROTO_TCP) {
		return TC_ACT_OK;
	}
	/* IP options and fragments are left to the slow path */
	if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3FFF))) {
		count_stat(STAT_SKIPPED);
		return TC_ACT_OK;
	}
	/* the whole L4 header, checksum included, must be in the packet */
	if (data + csum_off + 2 > data_end)
		return TC_ACT_OK;

	__builtin_memset(&key, 0, sizeof(key));
	key.addr = ip->daddr;
	key.port = ports->dest;
	key.proto = ip->protocol;
	target = bpf_map_lookup_elem(&nat_rules, &key);
	if (!target) {
		count_stat(STAT_NO_RULE);
		return TC_ACT_OK;
	}

	old_addr = ip->daddr;
	old_port = ports->dest;
	new_addr = target->addr;
	new_port = target->port;
	/* the helpers may move the packet data: no packet pointer is used after them */
	bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, csum_flags | BPF_F_PSEUDO_HDR | 4);
	bpf_l4_csum_replace(skb, csum_off, old_port, new_port, csum_flags | 2);
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, 4);
	bpf_skb_store_bytes(skb, IP_DST_OFF, &new_addr, 4, 0);
	bpf_skb_store_bytes(skb, DPORT_OFF, &new_port, 2, 0);
	count_hit(&key);
	count_stat(STAT_TRANSLATED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
