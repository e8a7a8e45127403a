// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_icmp_reflect.ks: answers IPv4 echo requests with XDP_TX
 * (MACs and addresses swapped, type 0, configured TTL, both checksums updated per RFC 1624),
 * with a per-source reply budget in an LRU hash {requests, replies, refused, bytes, last_seq}.
 * Outcomes are counted in a per-CPU array. The config is read once per packet. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

enum { R_REPLIED, R_LIMITED, R_DISABLED, R_TOO_BIG, R_MALFORMED, R_FRAGMENT, R_MAX };

struct responder_config {
	bool enabled;
	__u32 max_replies;
	__u32 max_payload;
	__u8 reply_ttl;
};

struct responder_config responder SEC(".data.responder") = {
	.enabled = true,
	.max_replies = 100,
	.max_payload = 1024,
	.reply_ttl = 64,
};

struct SrcStats {
	__u64 requests;
	__u32 replies;
	__u32 refused;
	__u64 bytes;
	__u16 last_seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct SrcStats);
} sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} reflect_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&reflect_stats, &slot);

	if (v)
		*v += 1;
}

/* RFC 1624 eqn. 3 on words as they lie in the packet (the sum is byte-order independent) */
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32)new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __always_inline bool admit(__u32 src, __u16 seq, __u64 payload, __u32 limit)
{
	struct SrcStats *s = bpf_map_lookup_elem(&sources, &src);
	struct SrcStats init;

	if (s) {
		s->requests += 1;
		s->last_seq = seq;
		if (s->replies >= limit) {
			s->refused += 1;
			return false;
		}
		s->replies += 1;
		s->bytes += payload;
		return true;
	}
	__builtin_memset(&init, 0, sizeof(init));
	init.requests = 1;
	init.last_seq = seq;
	if (limit == 0) {
		init.refused = 1;
	} else {
		init.replies = 1;
		init.bytes = payload;
	}
	bpf_map_update_elem(&sources, &src, &init, BPF_ANY);
	return limit != 0;
}

SEC("xdp")
int icmp_reflect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	unsigned char mac[ETH_ALEN];
	struct icmphdr *icmp;
	__u8 ttl;
	__u64 payload;
	__be32 addr;
	__u32 hlen;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end) {
		count(R_MALFORMED);
		return XDP_DROP;
	}
	if (ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip)) {
		count(R_MALFORMED);
		return XDP_DROP;
	}
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		count(R_FRAGMENT);
		return XDP_PASS;
	}
	icmp = (void *)ip + hlen;
	if ((void *)(icmp + 1) > data_end) {
		count(R_MALFORMED);
		return XDP_DROP;
	}
	if (icmp->type != ICMP_ECHO || icmp->code != 0)
		return XDP_PASS;
	if (!responder.enabled) {
		count(R_DISABLED);
		return XDP_PASS;
	}
	payload = data_end - (void *)(icmp + 1);
	if (payload > responder.max_payload) {
		count(R_TOO_BIG);
		return XDP_PASS;
	}
	if (!admit(ip->saddr, bpf_ntohs(icmp->un.echo.sequence), payload, responder.max_replies)) {
		count(R_LIMITED);
		return XDP_DROP;
	}

	/* type and code are the first word of the ICMP message (code is 0) */
	icmp->type = ICMP_ECHOREPLY;
	icmp->checksum = csum_replace(icmp->checksum, bpf_htons(ICMP_ECHO << 8),
				      bpf_htons(ICMP_ECHOREPLY << 8));

	/* TTL and protocol share a word of the IPv4 header */
	ttl = responder.reply_ttl;
	ip->check = csum_replace(ip->check, bpf_htons(ip->ttl << 8 | ip->protocol),
				 bpf_htons(ttl << 8 | ip->protocol));
	ip->ttl = ttl;

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	count(R_REPLIED);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
