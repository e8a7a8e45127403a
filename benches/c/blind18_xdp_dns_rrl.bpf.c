// SPDX-License-Identifier: GPL-2.0
/* DNS response rate limiting (RRL) at XDP: token bucket per (client /24, QTYPE). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100
#define DNS_PORT	53

#define DNS_QR		0x8000
#define DNS_OPCODE_MASK	0x7800

#define QT_TXT		16
#define QT_RRSIG	46
#define QT_DNSKEY	48
#define QT_ANY		255

#define MAX_LABELS	16
#define NS_PER_SEC	1000000000ULL

enum rrl_stat {
	ST_PASSED = 0,
	ST_LIMITED = 1,
	ST_NEW_BUCKET = 2,
	ST_MALFORMED = 3,
	ST_FRAGMENT = 4,
	ST_NOT_RESPONSE = 5,
	ST_NAME_TOO_LONG = 6,
	ST_DISABLED = 7,
};

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct rrl_key {
	__u32 prefix;
	__u16 qtype;
	__u16 pad;
};

struct rrl_bucket {
	__u64 last_ns;
	__u32 tokens;
	__u32 limited;
};

struct rrl_config {
	__u32 rate;
	__u32 burst;
	bool enabled;
};

struct rrl_config rrl SEC(".data.rrl") = {
	.rate = 20,
	.burst = 8,
	.enabled = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rrl_key);
	__type(value, struct rrl_bucket);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} rrl_stats SEC(".maps");

__u64 responses_seen = 0;
__u32 last_limited_prefix = 0;

static __always_inline void count(__u32 st)
{
	__u64 *c = bpf_map_lookup_elem(&rrl_stats, &st);

	if (c)
		*c += 1;
}

static __always_inline __u32 qtype_cost(__u16 qtype)
{
	switch (qtype) {
	case QT_ANY:
		return 4;
	case QT_TXT:
	case QT_RRSIG:
	case QT_DNSKEY:
		return 2;
	default:
		return 1;
	}
}

SEC("xdp")
int blind18_xdp_dns_rrl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct dnshdr *dns;
	struct rrl_bucket *b;
	__u16 proto, flags, qtype;
	__u32 cost;
	__u64 now;
	__u8 *p;
	int i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		if (data + 18 > data_end)
			return XDP_PASS;
		proto = *(__be16 *)(data + 16);
		ip = data + 18;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->source != bpf_htons(DNS_PORT))
		return XDP_PASS;

	if (bpf_ntohs(ip->frag_off) & 0x3fff) {
		count(ST_FRAGMENT);
		return XDP_PASS;
	}
	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end) {
		count(ST_MALFORMED);
		return XDP_PASS;
	}
	flags = bpf_ntohs(dns->flags);
	if (!(flags & DNS_QR) || (flags & DNS_OPCODE_MASK)) {
		count(ST_NOT_RESPONSE);
		return XDP_PASS;
	}
	if (bpf_ntohs(dns->qdcount) != 1) {
		count(ST_MALFORMED);
		return XDP_PASS;
	}

	/* QNAME: length-prefixed labels terminated by a zero byte */
	p = (__u8 *)(dns + 1);
	for (i = 0; i < MAX_LABELS; i++) {
		__u8 len;

		if ((void *)(p + 1) > data_end) {
			count(ST_MALFORMED);
			return XDP_PASS;
		}
		len = *p;
		if (len == 0)
			break;
		if (len > 63) {
			count(ST_MALFORMED);
			return XDP_PASS;
		}
		p += len + 1;
	}
	if (i == MAX_LABELS) {
		count(ST_NAME_TOO_LONG);
		return XDP_PASS;
	}
	p++;
	if ((void *)(p + 4) > data_end) {
		count(ST_MALFORMED);
		return XDP_PASS;
	}
	qtype = bpf_ntohs(*(__be16 *)p);

	__sync_fetch_and_add(&responses_seen, 1);
	if (!rrl.enabled) {
		count(ST_DISABLED);
		return XDP_PASS;
	}

	struct rrl_key key = {
		.prefix = ip->daddr & bpf_htonl(0xffffff00),
		.qtype = qtype,
		.pad = 0,
	};
	cost = qtype_cost(qtype);
	now = bpf_ktime_get_ns();

	b = bpf_map_lookup_elem(&buckets, &key);
	if (b) {
		__u64 refill = (now - b->last_ns) * rrl.rate / NS_PER_SEC;

		if (refill > 0) {
			__u64 tokens = b->tokens + refill;

			if (tokens > rrl.burst)
				tokens = rrl.burst;
			b->tokens = tokens;
			b->last_ns = now;
		}
		if (b->tokens >= cost) {
			b->tokens -= cost;
			count(ST_PASSED);
			return XDP_PASS;
		}
		b->limited += 1;
		count(ST_LIMITED);
		last_limited_prefix = key.prefix;
		return XDP_DROP;
	}

	/* first response towards this prefix/type: start with a full bucket */
	struct rrl_bucket nb = { .last_ns = now };

	if (rrl.burst < cost) {
		nb.tokens = rrl.burst;
		nb.limited = 1;
		bpf_map_update_elem(&buckets, &key, &nb, BPF_ANY);
		count(ST_LIMITED);
		last_limited_prefix = key.prefix;
		return XDP_DROP;
	}
	nb.tokens = rrl.burst - cost;
	nb.limited = 0;
	bpf_map_update_elem(&buckets, &key, &nb, BPF_ANY);
	count(ST_NEW_BUCKET);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
