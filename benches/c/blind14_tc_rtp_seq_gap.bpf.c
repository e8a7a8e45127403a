// SPDX-License-Identifier: GPL-2.0
/* blind14_tc_rtp_seq_gap.bpf.c — C twin of blind14_tc_rtp_seq_gap.ks: RTP sequence-gap
 * monitor on tc ingress (per-SSRC loss / reorder accounting, malformed RTP counted by reason
 * and dropped when rtp.drop_bad). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct rtp_hdr {
	__u8 vpxcc;
	__u8 mpt;
	__be16 seq;
	__be32 ts;
	__be32 ssrc;
};

struct rtp_ext {
	__be16 profile;
	__be16 length;
};

struct flow_state {
	__u16 last_seq;
	__u64 packets;
	__u64 lost;
	__u64 reordered;
	__u32 last_ts;
};

struct rtp_config {
	__u16 lo_port;
	__u16 hi_port;
	bool drop_bad;
};

struct rtp_config rtp SEC(".data.rtp") = {
	.lo_port = 16384,
	.hi_port = 32767,
	.drop_bad = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} malformed SEC(".maps");

__u64 truncated = 0;
__u64 not_rtp = 0;
__u64 resyncs = 0;
__u64 payload_bytes = 0;

enum {
	RTP_SHORT = 1,
	RTP_BAD_VERSION = 2,
	RTP_SHORT_CSRC = 3,
	RTP_SHORT_EXT = 4,
};

/* Returns 0 and fills the header fields, or the malformed reason. */
static __always_inline int parse_rtp(void *data, void *data_end, __u64 off,
				     __u32 *ssrc, __u32 *ts, __u16 *seq, __u64 *hdr_len)
{
	struct rtp_hdr *h = data + off;
	struct rtp_ext *ext;
	__u64 len;

	if ((void *)(h + 1) > data_end)
		return RTP_SHORT;
	if ((h->vpxcc >> 6) != 2)
		return RTP_BAD_VERSION;
	len = 12 + (__u64)(h->vpxcc & 0x0f) * 4;
	if (data + off + len > data_end)
		return RTP_SHORT_CSRC;
	if (h->vpxcc & 0x10) {
		ext = data + off + len;
		if ((void *)(ext + 1) > data_end)
			return RTP_SHORT_EXT;
		len += 4 + (__u64)bpf_ntohs(ext->length) * 4;
		if (data + off + len > data_end)
			return RTP_SHORT_EXT;
	}
	*ssrc = bpf_ntohl(h->ssrc);
	*ts = bpf_ntohl(h->ts);
	*seq = bpf_ntohs(h->seq);
	*hdr_len = len;
	return 0;
}

SEC("tcx/ingress")
int rtp_seq_gap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct flow_state *st;
	__u64 ihl, udp_off, rtp_off, hdr_len;
	__u32 ssrc, ts, key;
	__u16 dport, seq, delta;
	__u64 *cnt;
	int reason;

	if ((void *)(eth + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return TC_ACT_OK;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&not_rtp, 1);
		return TC_ACT_OK;
	}
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return TC_ACT_OK;
	}
	ihl = ip->ihl;
	if (ip->version != 4 || ihl < 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x1fff))) {
		__sync_fetch_and_add(&not_rtp, 1);
		return TC_ACT_OK;
	}
	udp_off = sizeof(*eth) + ihl * 4;
	udp = data + udp_off;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return TC_ACT_OK;
	}
	dport = bpf_ntohs(udp->dest);
	if (dport < rtp.lo_port || dport > rtp.hi_port) {
		__sync_fetch_and_add(&not_rtp, 1);
		return TC_ACT_OK;
	}

	rtp_off = udp_off + sizeof(*udp);
	reason = parse_rtp(data, data_end, rtp_off, &ssrc, &ts, &seq, &hdr_len);
	if (reason) {
		key = reason;
		cnt = bpf_map_lookup_elem(&malformed, &key);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		return rtp.drop_bad ? TC_ACT_SHOT : TC_ACT_OK;
	}

	__sync_fetch_and_add(&payload_bytes, (__u64)(data_end - data) - rtp_off - hdr_len);

	st = bpf_map_lookup_elem(&flows, &ssrc);
	if (!st) {
		struct flow_state init;

		__builtin_memset(&init, 0, sizeof(init));
		init.last_seq = seq;
		init.packets = 1;
		init.last_ts = ts;
		bpf_map_update_elem(&flows, &ssrc, &init, BPF_ANY);
		return TC_ACT_OK;
	}

	delta = seq - st->last_seq;
	st->packets++;
	if (delta == 1) {
		st->last_seq = seq;
		st->last_ts = ts;
	} else if (delta >= 2 && delta <= 3000) {
		st->lost += delta - 1;
		st->last_seq = seq;
		st->last_ts = ts;
	} else if (delta == 0 || delta > 32768) {
		st->reordered++;
	} else {
		__sync_fetch_and_add(&resyncs, 1);
		st->last_seq = seq;
		st->last_ts = ts;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
