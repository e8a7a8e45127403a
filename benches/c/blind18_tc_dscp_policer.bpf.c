// SPDX-License-Identifier: GPL-2.0
/* Per-DSCP single-rate three-color marker (RFC 2697, color-blind) at TC
 * ingress (hand-written twin of blind18_tc_dscp_policer.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD

#define NSEC_PER_SEC	1000000000ULL
/* Refill at most one second's worth of tokens: keeps elapsed * cir in range. */
#define MAX_ELAPSED_NS	1000000000ULL
#define NR_DSCP		64

#define IP_CSUM_OFF	(sizeof(struct ethhdr) + offsetof(struct iphdr, check))

struct profile {
	__u64 cir;	/* committed information rate, bytes per second */
	__u64 cbs;	/* committed burst size, bytes */
	__u64 ebs;	/* excess burst size, bytes */
};

struct token_state {
	__u64 tc;
	__u64 te;
	__u64 last_ns;
};

enum color {
	GREEN = 0,
	YELLOW = 1,
	RED = 2,
};

struct policer_config {
	__u8 yellow_dscp;
};

struct policer_config policer SEC(".data.policer") = {
	.yellow_dscp = 12,	/* AF12 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_DSCP);
	__type(key, __u32);
	__type(value, struct profile);
} dscp_profiles SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_DSCP);
	__type(key, __u32);
	__type(value, struct token_state);
} policer_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} color_counts SEC(".maps");

__u64 non_ip = 0;
__u64 unpoliced = 0;
__u64 remarked = 0;

/* srTCM, color-blind: refill both buckets, then take the packet's bytes from
 * the committed bucket, else from the excess bucket, else it is red. */
static __always_inline enum color srtcm_color(__u32 dscp, __u64 len)
{
	struct profile *prof;
	struct token_state *st;
	__u64 now;

	prof = bpf_map_lookup_elem(&dscp_profiles, &dscp);
	if (!prof || prof->cbs == 0) {
		__sync_fetch_and_add(&unpoliced, 1);
		return GREEN;
	}
	st = bpf_map_lookup_elem(&policer_state, &dscp);
	if (!st)
		return RED;	/* cannot happen: dscp < NR_DSCP */

	now = bpf_ktime_get_ns();
	if (st->last_ns == 0) {
		/* First packet of the class: start with full buckets. */
		st->tc = prof->cbs;
		st->te = prof->ebs;
		st->last_ns = now;
	} else if (now > st->last_ns) {
		__u64 elapsed = now - st->last_ns;
		__u64 add;

		if (elapsed > MAX_ELAPSED_NS)
			elapsed = MAX_ELAPSED_NS;
		add = elapsed * prof->cir / NSEC_PER_SEC;
		/* Keep the clock where it was until a whole token has accrued. */
		if (add) {
			__u64 tc = st->tc + add;

			if (tc > prof->cbs) {
				__u64 te = st->te + (tc - prof->cbs);

				if (te > prof->ebs)
					te = prof->ebs;
				st->te = te;
				tc = prof->cbs;
			}
			st->tc = tc;
			st->last_ns = now;
		}
	}
	if (st->tc >= len) {
		st->tc -= len;
		return GREEN;
	}
	if (st->te >= len) {
		st->te -= len;
		return YELLOW;
	}
	return RED;
}

SEC("tcx/ingress")
int dscp_policer(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__be32 *vtc = data + sizeof(*eth);
	__u32 dscp, key;
	enum color color;
	__u64 *cnt;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_IP)) {
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		dscp = ip->tos >> 2;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (data + sizeof(*eth) + sizeof(struct ipv6hdr) > data_end)
			return TC_ACT_OK;
		dscp = (bpf_ntohl(*vtc) >> 22) & 0x3f;
	} else {
		__sync_fetch_and_add(&non_ip, 1);
		return TC_ACT_OK;
	}

	color = srtcm_color(dscp, skb->len);
	key = color;
	cnt = bpf_map_lookup_elem(&color_counts, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	switch (color) {
	case GREEN:
		return TC_ACT_OK;
	case YELLOW: {
		__u32 new_dscp = policer.yellow_dscp;

		if (proto == bpf_htons(ETH_P_IP)) {
			/* version/ihl and TOS form the header's first 16-bit word;
			 * rewrite it whole, keeping the ECN bits. */
			__be16 *word = (void *)ip;
			__be16 old_word = *word;
			__be16 new_word = (old_word & bpf_htons(0xff03)) |
					  bpf_htons((new_dscp << 2) & 0xfc);

			*word = new_word;
			bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, 2);
		} else {
			*vtc = bpf_htonl((bpf_ntohl(*vtc) & 0xf03fffff) | (new_dscp << 22));
		}
		__sync_fetch_and_add(&remarked, 1);
		return TC_ACT_OK;
	}
	default:
		return TC_ACT_SHOT;
	}
}

char _license[] SEC("license") = "GPL";
