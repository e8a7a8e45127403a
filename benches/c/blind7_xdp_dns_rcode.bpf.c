// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_xdp_dns_rcode.ks: DNS response statistics in XDP. IPv4 UDP
 * datagrams from port 53 are counted per RCODE and per answer-count bucket; responses with TC
 * set per destination port (host order) in a hash; queries apart. Frames that are not DNS or
 * are short/invalid are counted per reason. Every frame passes. The .ks throwing helpers
 * become parse_dns() returning the reason code; the deferred message count is done once the
 * header has been read. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53

#define DNS_QR 0x8000
#define DNS_TC 0x0200
#define DNS_RCODE 0x000F
#define DNS_MAX_OPCODE 6

enum Skip {
	NotDns = 1,
	ShortFrame = 2,
	BadIpHeader = 3,
	ShortUdp = 4,
	BadUdpLen = 5,
	ShortDns = 6,
	BadOpcode = 7,
};

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} rcodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} answer_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} truncated_by_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} skipped SEC(".maps");

__u64 queries = 0;
__u64 messages = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, __u16 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, &key);

	if (!v) {
		if (!bpf_map_update_elem(map, &key, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(map, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

/* 0 with the header fields in host order, else the Skip reason */
static __always_inline int parse_dns(struct xdp_md *ctx, __u16 *client_port, __u16 *flags,
				     __u16 *ancount)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	struct dnshdr *dns;
	__u16 f;

	if ((void *)(eth + 1) > data_end)
		return ShortFrame;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NotDns;
	if ((void *)(ip + 1) > data_end)
		return ShortFrame;
	if (ip->version != 4 || ip->ihl < 5)
		return BadIpHeader;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)))
		return NotDns;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return ShortUdp;
	if (udp->source != bpf_htons(DNS_PORT))
		return NotDns;
	if (bpf_ntohs(udp->len) < sizeof(*udp) + sizeof(*dns))
		return BadUdpLen;
	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end)
		return ShortDns;
	f = bpf_ntohs(dns->flags);
	if (((f >> 11) & 0x0F) > DNS_MAX_OPCODE)
		return BadOpcode;
	*client_port = bpf_ntohs(udp->dest);
	*flags = f;
	*ancount = bpf_ntohs(dns->ancount);
	return 0;
}

static __always_inline __u32 answer_bucket(__u16 ancount)
{
	if (ancount == 0)
		return 0;
	if (ancount == 1)
		return 1;
	if (ancount < 4)
		return 2;
	if (ancount < 8)
		return 3;
	return 4;
}

SEC("xdp")
int dns_rcode(struct xdp_md *ctx)
{
	__u16 client_port = 0, flags = 0, ancount = 0;
	int reason;

	reason = parse_dns(ctx, &client_port, &flags, &ancount);
	if (reason) {
		count(&skipped, reason);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&messages, 1);

	if (!(flags & DNS_QR)) {
		__sync_fetch_and_add(&queries, 1);
		return XDP_PASS;
	}
	count(&rcodes, flags & DNS_RCODE);
	count(&answer_buckets, answer_bucket(ancount));
	if (flags & DNS_TC)
		hash_inc(&truncated_by_port, client_port);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
