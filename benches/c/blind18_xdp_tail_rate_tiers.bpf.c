// SPDX-License-Identifier: GPL-2.0
/* Tail-call chain: classify -> meter (per-tier token bucket) -> remark (DSCP rewrite). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100

#define DSCP_CS1	8
#define DSCP_AF31	26
#define DSCP_CS4	32
#define DSCP_AF41	34
#define DSCP_EF		46

#define NS_PER_SEC	1000000000ULL

enum { PROG_METER = 0, PROG_REMARK = 1 };

enum tier {
	TIER_GOLD = 0,
	TIER_SILVER = 1,
	TIER_BRONZE = 2,
	TIER_BULK = 3,
};

struct scratch {
	__u32 tier;
	__u32 l3_off;
	__u32 pkt_len;
};

struct tier_bucket {
	__u64 rate;	/* bytes per second */
	__u64 burst;	/* bytes */
	__u64 tokens;
	__u64 last_ns;
	__u8 exceed_dscp;
	bool drop_exceed;
	__u8 pad[6];
};

struct tier_counters {
	__u64 conform_pkts;
	__u64 conform_bytes;
	__u64 exceed_pkts;
	__u64 remarked;
	__u64 dropped;
};

struct tiering_config {
	__u16 voice_port_lo;
	__u16 voice_port_hi;
	bool meter_enabled;
};

struct tiering_config tiering SEC(".data.tiering") = {
	.voice_port_lo = 16384,
	.voice_port_hi = 32767,
	.meter_enabled = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct tier_bucket);
} tier_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct tier_counters);
} tier_stats SEC(".maps");

__u64 classified_pkts = 0;
__u64 non_ipv4_pkts = 0;

/* RFC 1624: HC' = ~(~HC + ~m + m'), host byte order */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int blind18_xdp_tail_rate_tiers(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct scratch *s;
	struct iphdr *ip;
	__u32 off = sizeof(*eth), zero = 0;
	__u16 proto;
	__u8 dscp;
	__u32 tier;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		if (data + 18 > data_end)
			return XDP_PASS;
		proto = *(__be16 *)(data + 16);
		off = 18;
	}
	if (proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4_pkts, 1);
		return XDP_PASS;
	}
	if (data + off + sizeof(*ip) > data_end)
		return XDP_PASS;
	ip = data + off;
	if (ip->ihl < 5)
		return XDP_PASS;

	dscp = ip->tos >> 2;
	switch (dscp) {
	case DSCP_EF:
		tier = TIER_GOLD;
		break;
	case DSCP_AF41:
	case DSCP_CS4:
	case DSCP_AF31:
		tier = TIER_SILVER;
		break;
	case DSCP_CS1:
		tier = TIER_BULK;
		break;
	default:
		tier = TIER_BRONZE;
	}
	if (dscp == 0 && !(bpf_ntohs(ip->frag_off) & 0x1fff)) {
		/* unmarked: look at the destination port */
		void *l4 = (void *)ip + ip->ihl * 4;
		__u8 ipproto = ip->protocol;

		if ((ipproto == IPPROTO_TCP || ipproto == IPPROTO_UDP) && l4 + 4 <= data_end) {
			__u16 dport = bpf_ntohs(*(__be16 *)(l4 + 2));

			if (ipproto == IPPROTO_UDP && dport >= tiering.voice_port_lo &&
			    dport <= tiering.voice_port_hi) {
				tier = TIER_GOLD;
			} else {
				switch (dport) {
				case 22:
				case 53:
					tier = TIER_SILVER;
					break;
				case 20:
				case 873:
					tier = TIER_BULK;
					break;
				default:
					tier = TIER_BRONZE;
				}
			}
		}
	}

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s) {
		s->tier = tier;
		s->l3_off = off;
		s->pkt_len = data_end - data;
	}
	__sync_fetch_and_add(&classified_pkts, 1);
	if (!tiering.meter_enabled)
		return XDP_PASS;
	bpf_tail_call(ctx, &prog_array, PROG_METER);
	return XDP_PASS;
}

SEC("xdp")
int tiers_meter(struct xdp_md *ctx)
{
	struct tier_counters *c;
	struct tier_bucket *b;
	struct scratch *s;
	__u32 zero = 0, t = 0, len = 0;
	__u64 now, elapsed, refill;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s) {
		t = s->tier;
		len = s->pkt_len;
	}
	b = bpf_map_lookup_elem(&tier_buckets, &t);
	if (!b)
		return XDP_PASS;

	now = bpf_ktime_get_ns();
	elapsed = now - b->last_ns;
	if (elapsed > NS_PER_SEC)
		elapsed = NS_PER_SEC;	/* refill at most one second's worth */
	refill = elapsed * b->rate / NS_PER_SEC;
	if (refill > 0) {
		__u64 tokens = b->tokens + refill;

		if (tokens > b->burst)
			tokens = b->burst;
		b->tokens = tokens;
		b->last_ns = now;
	}

	c = bpf_map_lookup_elem(&tier_stats, &t);
	if (b->tokens >= len) {
		b->tokens -= len;
		if (c) {
			c->conform_pkts += 1;
			c->conform_bytes += len;
		}
		return XDP_PASS;
	}

	if (c) {
		c->exceed_pkts += 1;
		if (b->drop_exceed)
			c->dropped += 1;
	}
	if (b->drop_exceed)
		return XDP_DROP;
	bpf_tail_call(ctx, &prog_array, PROG_REMARK);
	return XDP_PASS;
}

SEC("xdp")
int tiers_remark(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct tier_counters *c;
	struct tier_bucket *b;
	struct scratch *s;
	struct iphdr *ip;
	__u32 zero = 0, t = 0, off = 0;
	__u16 word, new_word;
	__u8 tos, new_tos;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s) {
		t = s->tier;
		off = s->l3_off;
	}
	b = bpf_map_lookup_elem(&tier_buckets, &t);
	if (!b || off > 18)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + off + sizeof(*ip) > data_end)
		return XDP_PASS;
	ip = data + off;

	tos = ip->tos;
	new_tos = (b->exceed_dscp << 2) | (tos & 3);
	if (new_tos == tos)
		return XDP_PASS;
	word = bpf_ntohs(*(__be16 *)ip);
	new_word = (word & 0xff00) | new_tos;
	ip->check = bpf_htons(csum_replace16(bpf_ntohs(ip->check), word, new_word));
	ip->tos = new_tos;
	c = bpf_map_lookup_elem(&tier_stats, &t);
	if (c)
		c->remarked += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
