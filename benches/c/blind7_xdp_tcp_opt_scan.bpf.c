// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_xdp_tcp_opt_scan.ks: walks the TCP options of IPv4 SYNs
 * (at most 40 bytes, bounded by the data offset), counts which of MSS, window scale,
 * SACK-permitted, timestamps and other options each SYN carries, reports SYNs whose MSS is
 * below the configured minimum on a ring buffer, and counts malformed option lists. Every
 * frame passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* open-coded numeric iterator (kernel >= 6.4), as in the kernel's bpf_experimental.h */
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

#define ETH_P_IP 0x0800
#define MAX_OPT_BYTES 40

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8

#define SEEN_MSS 0x01
#define SEEN_WSCALE 0x02
#define SEEN_SACK_PERM 0x04
#define SEEN_TIMESTAMP 0x08
#define SEEN_OTHER 0x10

#define P_MSS 0
#define P_WSCALE 1
#define P_SACK_PERM 2
#define P_TIMESTAMP 3
#define P_OTHER 4
#define P_NO_OPTIONS 5

struct scan_config {
	__u16 min_mss;
};

struct MssEvent {
	__u32 saddr;
	__u16 sport;
	__u16 mss;
	__u8 wscale;
	__u8 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct scan_config);
} scan_config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} opt_presence SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8192);
} small_mss SEC(".maps");

__u64 syns_scanned = 0;
__u64 malformed_options = 0;
__u64 small_mss_syns = 0;
__u64 events_lost = 0;

static __always_inline void presence_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&opt_presence, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int tcp_opt_scan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct scan_config *cfg;
	struct tcphdr *tcp;
	__u32 hlen, doff, opt_len, off = 0, len, zero = 0;
	__u8 *opts, kind, seen = 0, wscale = 0;
	__u16 mss = 0, min_mss;
	struct bpf_iter_num it;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return XDP_PASS;
	tcp = (void *)ip + hlen;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;
	__sync_fetch_and_add(&syns_scanned, 1);

	doff = tcp->doff * 4;
	if (doff < sizeof(*tcp))
		goto malformed;
	opt_len = doff - sizeof(*tcp);
	opts = (__u8 *)(tcp + 1);

	/* Every option takes at least one byte and opt_len <= MAX_OPT_BYTES (doff is 4 bits),
	 * so MAX_OPT_BYTES rounds always reach the end of the list (the .ks cap `off < 40`
	 * never decides). The walk is an open-coded iterator: as a plain counted loop the
	 * verifier follows every (round, offset, options seen) combination and gives up. */
	bpf_iter_num_new(&it, 0, MAX_OPT_BYTES);
	while (bpf_iter_num_next(&it)) {
		__u8 *p;

		if (off >= opt_len)
			break;
		p = opts + off;
		if ((void *)(p + 1) > data_end)
			goto bad;
		kind = p[0];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			off++;
			continue;
		}
		if (off + 2 > opt_len || (void *)(p + 2) > data_end)
			goto bad;
		len = p[1];
		if (len < 2 || off + len > opt_len || (void *)(p + len) > data_end)
			goto bad;
		switch (kind) {
		case TCPOPT_MSS:
			/* p + len is within the frame; the constant test lets the verifier see it */
			if (len != 4 || (void *)(p + 4) > data_end)
				goto bad;
			mss = (__u16)p[2] << 8 | p[3];
			seen |= SEEN_MSS;
			break;
		case TCPOPT_WSCALE:
			if (len != 3 || (void *)(p + 3) > data_end)
				goto bad;
			wscale = p[2];
			seen |= SEEN_WSCALE;
			break;
		case TCPOPT_SACK_PERM:
			if (len != 2)
				goto bad;
			seen |= SEEN_SACK_PERM;
			break;
		case TCPOPT_TIMESTAMP:
			if (len != 10)
				goto bad;
			seen |= SEEN_TIMESTAMP;
			break;
		default:
			seen |= SEEN_OTHER;
		}
		off += len;
	}
	bpf_iter_num_destroy(&it);

	if (!seen)
		presence_inc(P_NO_OPTIONS);
	if (seen & SEEN_MSS)
		presence_inc(P_MSS);
	if (seen & SEEN_WSCALE)
		presence_inc(P_WSCALE);
	if (seen & SEEN_SACK_PERM)
		presence_inc(P_SACK_PERM);
	if (seen & SEEN_TIMESTAMP)
		presence_inc(P_TIMESTAMP);
	if (seen & SEEN_OTHER)
		presence_inc(P_OTHER);

	if (seen & SEEN_MSS) {
		cfg = bpf_map_lookup_elem(&scan_config_map, &zero);
		min_mss = cfg ? cfg->min_mss : 0;
		if (mss < min_mss) {
			struct MssEvent *ev;

			__sync_fetch_and_add(&small_mss_syns, 1);
			ev = bpf_ringbuf_reserve(&small_mss, sizeof(*ev), 0);
			if (ev) {
				ev->saddr = ip->saddr;
				ev->sport = bpf_ntohs(tcp->source);
				ev->mss = mss;
				ev->wscale = wscale;
				ev->seen = seen;
				bpf_ringbuf_submit(ev, 0);
			} else {
				__sync_fetch_and_add(&events_lost, 1);
			}
		}
	}
	return XDP_PASS;

bad:	/* malformed inside the walk */
	bpf_iter_num_destroy(&it);
malformed:
	__sync_fetch_and_add(&malformed_options, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
