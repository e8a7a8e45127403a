// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_xdp_tcp_mss_stats.ks: TCP SYN option statistics. IPv4 SYNs
 * (no ACK, no RST), optionally to one port, have their options walked for MSS and window scale.
 * MSS buckets go into an array, window-scale shifts into a hash (255 = none), SYN counts into a
 * per-CPU array; malformed or cut-off option lists are only
 * counted; SYNs announcing an MSS below min_mss (when set) are dropped. The walk is bounded by
 * the 40 option bytes a header can hold; it stops at the header's end as the .ks loop does. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET 0x1fff

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define MAX_OPT_BYTES 40

#define NO_WSCALE 255

#define C_SYNS 0
#define C_MALFORMED 1
#define C_TRUNCATED 2
#define C_NO_OPTIONS 3
#define C_SMALL_MSS_DROPPED 4

struct mss_config {
	__u16 port;
	__u16 min_mss;
};

struct mss_config mss SEC(".data.mss") = {
	.port = 0,
	.min_mss = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} mss_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u8);
	__type(value, __u64);
} wscales SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} syn_counts SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&syn_counts, &idx);

	if (v)
		*v += 1;
}

static __always_inline __u32 mss_bucket(__u32 m)
{
	if (m == 0)
		return 0;
	if (m < 536)
		return 1;
	if (m < 1220)
		return 2;
	if (m < 1400)
		return 3;
	if (m < 1460)
		return 4;
	if (m == 1460)
		return 5;
	if (m <= 8960)
		return 6;
	return 7;
}

SEC("xdp")
int tcp_mss_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 hlen, pos = sizeof(*tcp), mss_val = 0, bucket, i;
	__u8 wscale = NO_WSCALE, *opt, kind, len;
	__u64 one = 1, *v;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl < 5 || ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return XDP_PASS;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack || tcp->rst)
		return XDP_PASS;
	if (mss.port && tcp->dest != bpf_htons(mss.port))
		return XDP_PASS;
	bump(C_SYNS);
	if (tcp->doff < 5) {
		bump(C_MALFORMED);
		return XDP_PASS;
	}

	if (tcp->doff == 5)
		bump(C_NO_OPTIONS);
	hlen = tcp->doff * 4;
	for (i = 0; i < MAX_OPT_BYTES; i++) {
		if (pos >= hlen)
			break;
		opt = (__u8 *)tcp + pos;
		if ((void *)(opt + 1) > data_end)
			goto truncated;
		kind = opt[0];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			pos++;
			continue;
		}
		if ((void *)(opt + 2) > data_end)
			goto truncated;
		len = opt[1];
		if (len < 2 || pos + len > hlen) {
			bump(C_MALFORMED);
			return XDP_PASS;
		}
		if ((void *)opt + len > data_end)
			goto truncated;
		/* len is known here; the fixed-size tests repeat the one above for the verifier */
		if (kind == TCPOPT_MSS && len == 4) {
			if ((void *)(opt + 4) > data_end)
				goto truncated;
			mss_val = (__u32)opt[2] << 8 | opt[3];
		} else if (kind == TCPOPT_WSCALE && len == 3) {
			if ((void *)(opt + 3) > data_end)
				goto truncated;
			wscale = opt[2];
		}
		pos += len;
	}

	bucket = mss_bucket(mss_val);
	v = bpf_map_lookup_elem(&mss_hist, &bucket);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&wscales, &wscale);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else if (bpf_map_update_elem(&wscales, &wscale, &one, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&wscales, &wscale);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
	if (mss_val && mss_val < mss.min_mss) {
		bump(C_SMALL_MSS_DROPPED);
		return XDP_DROP;
	}
	return XDP_PASS;

truncated:
	bump(C_TRUNCATED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
