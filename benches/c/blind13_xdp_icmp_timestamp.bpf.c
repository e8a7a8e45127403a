// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_xdp_icmp_timestamp.ks: answer IPv4 ICMP Timestamp requests
 * (type 13) in place with replies (type 14) and XDP_TX. MACs and addresses are swapped, the TTL
 * set to reply_ttl; receive and transmit become clock_ms (mod one day), or the request's own
 * originate time when the clock is unset or the originate has the non-UT bit set. The request's
 * ICMP checksum is verified, the reply's and the IPv4 header's recomputed from scratch over
 * ten 16-bit words. Options/fragments pass, bad code/length/checksum and over-budget sources
 * drop. One outcome per frame, replies per source, a ring-buffer record per reply. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define ICMP_TIMESTAMP 13
#define ICMP_TIMESTAMPREPLY 14
#define TS_MSG_LEN 20
#define NON_UT_TIME 0x80000000u
#define MS_PER_DAY 86400000u

enum {
	REPLIED = 0,
	MIRRORED = 1,
	NOT_ICMP = 2,
	NOT_TIMESTAMP = 3,
	TRUNCATED = 4,
	OPTIONS_OR_FRAGMENT = 5,
	MALFORMED = 6,
	BAD_CHECKSUM = 7,
	OVER_BUDGET = 8,
};

struct tsreply_config {
	__u32 clock_ms;
	__u8 reply_ttl;
	__u64 max_replies;
};

struct tsreply_config tsreply SEC(".data.tsreply") = {
	.clock_ms = 0,
	.reply_ttl = 64,
	.max_replies = 0,
};

/* RFC 792 timestamp message */
struct icmp_ts_msg {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
	__be32 originate;
	__be32 receive;
	__be32 transmit;
};

struct TsEvent {
	__be32 client;
	__u16 id;
	__u16 seq;
	__u32 originate;
	__u32 stamp;
	bool mirrored;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 9);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} replies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} ts_events SEC(".maps");

static __always_inline void count(__u32 outcome)
{
	__u64 *v = bpf_map_lookup_elem(&outcomes, &outcome);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_reply(__u32 client)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&replies, &client);

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (!bpf_map_update_elem(&replies, &client, &one, BPF_NOEXIST))
		return;
	v = bpf_map_lookup_elem(&replies, &client);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* one's-complement sum of the ten 16-bit words of a 20-byte header or message */
static __always_inline __u32 sum_words(const __u16 *w)
{
	__u32 sum = 0;
	int i;

	/* the header was just rewritten through wider fields */
	asm volatile("" ::: "memory");
	for (i = 0; i < 10; i++)
		sum += bpf_ntohs(w[i]);
	return sum;
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

SEC("xdp")
int icmp_timestamp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct icmp_ts_msg *ts = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN];
	__u32 client, orig, clock, stamp;
	struct TsEvent *ev;
	bool mirrored;
	__u64 budget;

	if ((void *)(eth + 1) > data_end) {
		count(TRUNCATED);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(NOT_ICMP);
		return XDP_PASS;
	}
	if ((void *)(ip + 1) > data_end) {
		count(TRUNCATED);
		return XDP_PASS;
	}
	if (ip->protocol != IPPROTO_ICMP) {
		count(NOT_ICMP);
		return XDP_PASS;
	}
	if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff))) {
		count(OPTIONS_OR_FRAGMENT);
		return XDP_PASS;
	}
	if ((void *)ts + 4 > data_end) {
		count(TRUNCATED);
		return XDP_PASS;
	}
	if (ts->type != ICMP_TIMESTAMP) {
		count(NOT_TIMESTAMP);
		return XDP_PASS;
	}
	if (ts->code != 0 || ip->tot_len != bpf_htons(sizeof(*ip) + TS_MSG_LEN)) {
		count(MALFORMED);
		return XDP_DROP;
	}
	if ((void *)(ts + 1) > data_end) {
		count(TRUNCATED);
		return XDP_PASS;
	}
	if (fold(sum_words((__u16 *)ts)) != 0xffff) {
		count(BAD_CHECKSUM);
		return XDP_DROP;
	}
	client = ip->saddr;
	budget = tsreply.max_replies;
	if (budget) {
		__u64 *sent = bpf_map_lookup_elem(&replies, &client);

		if (sent && *sent >= budget) {
			count(OVER_BUDGET);
			return XDP_DROP;
		}
	}

	orig = bpf_ntohl(ts->originate);
	clock = tsreply.clock_ms;
	stamp = clock % MS_PER_DAY;
	mirrored = false;
	if (clock == 0 || (orig & NON_UT_TIME)) {
		stamp = orig;
		mirrored = true;
	}

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	ip->saddr = ip->daddr;
	ip->daddr = client;
	ip->ttl = tsreply.reply_ttl;
	ip->check = 0;
	ip->check = bpf_htons(~fold(sum_words((__u16 *)ip)));
	ts->type = ICMP_TIMESTAMPREPLY;
	ts->receive = bpf_htonl(stamp);
	ts->transmit = bpf_htonl(stamp);
	ts->checksum = 0;
	ts->checksum = bpf_htons(~fold(sum_words((__u16 *)ts)));

	count_reply(client);
	count(REPLIED);
	if (mirrored)
		count(MIRRORED);
	ev = bpf_ringbuf_reserve(&ts_events, sizeof(*ev), 0);
	if (ev) {
		ev->client = client;
		ev->id = bpf_ntohs(ts->id);
		ev->seq = bpf_ntohs(ts->seq);
		ev->originate = orig;
		ev->stamp = stamp;
		ev->mirrored = mirrored;
		bpf_ringbuf_submit(ev, 0);
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
