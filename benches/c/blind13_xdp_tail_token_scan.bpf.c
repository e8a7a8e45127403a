// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_xdp_tail_token_scan.ks: a two-stage XDP chain. token_entry
 * parses Ethernet/IPv4/UDP and, for destination ports present in `watch`, leaves the payload's
 * offset and length (clipped to the frame) in a per-CPU scratch entry and tail-calls
 * token_scan, which searches the first scan_bytes (<= 64) payload bytes for the configured
 * 4-byte token; a match is reported on the ring buffer, counted in `watch` and dropped.
 * Per-CPU stage counters, one verdict per frame. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define SCAN_MAX 64
/* no XDP frame is longer: a stored offset beyond it holds no payload bytes (and the
 * verifier learns a packet range only below 0xffff) */
#define MAX_OFF 0x3fff

enum {
	V_NOT_UDP = 0,
	V_TRUNCATED = 1,
	V_BAD_HEADER = 2,
	V_FRAGMENT = 3,
	V_UNWATCHED = 4,
	V_SHORT_PAYLOAD = 5,
	V_CLEAN = 6,
	V_MATCHED = 7,
};

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_SCAN = 0 };

struct scan_config {
	__u8 token[4];
	__u32 scan_bytes;
};

struct scan_config scan SEC(".data.scan") = {
	.token = { 0x45, 0x56, 0x49, 0x4c },
	.scan_bytes = 64,
};

struct ScanState {
	__be32 saddr;
	__u16 sport;
	__u16 dport;
	__u32 payload_off;
	__u32 payload_len;
};

struct TokenEvent {
	__be32 saddr;
	__u16 sport;
	__u16 dport;
	__u32 offset;
	__u32 payload_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ScanState);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
} watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} token_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

static __always_inline void stage(__u32 n)
{
	__u64 *v = bpf_map_lookup_elem(&stage_hits, &n);

	if (v)
		*v += 1;
}

static __always_inline void verdict(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&verdicts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* watch[port] += 1 */
static __always_inline void count_match(__u16 port)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&watch, &port);

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (!bpf_map_update_elem(&watch, &port, &one, BPF_NOEXIST))
		return;
	v = bpf_map_lookup_elem(&watch, &port);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int token_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct ScanState *st;
	struct udphdr *udp;
	__u32 ihl, l4, ulen, plen, present, zero = 0;
	__u64 frame_len;
	__u16 dport;

	stage(0);
	if ((void *)(eth + 1) > data_end) {
		verdict(V_TRUNCATED);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		verdict(V_NOT_UDP);
		return XDP_PASS;
	}
	if ((void *)(ip + 1) > data_end) {
		verdict(V_TRUNCATED);
		return XDP_PASS;
	}
	if (ip->protocol != IPPROTO_UDP) {
		verdict(V_NOT_UDP);
		return XDP_PASS;
	}
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip)) {
		verdict(V_BAD_HEADER);
		return XDP_PASS;
	}
	if (ip->frag_off & bpf_htons(0x1fff)) {
		verdict(V_FRAGMENT);
		return XDP_PASS;
	}
	l4 = sizeof(*eth) + ihl;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end) {
		verdict(V_TRUNCATED);
		return XDP_PASS;
	}
	dport = bpf_ntohs(udp->dest);
	if (!bpf_map_lookup_elem(&watch, &dport)) {
		verdict(V_UNWATCHED);
		return XDP_PASS;
	}
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp)) {
		verdict(V_BAD_HEADER);
		return XDP_PASS;
	}
	plen = ulen - sizeof(*udp);
	/* a 64-bit difference: clang would otherwise subtract the pointers in 32 bits */
	frame_len = data_end - data;
	barrier_var(frame_len);
	present = (__u32)frame_len - (l4 + sizeof(*udp));
	if (plen > present)
		plen = present;

	st = bpf_map_lookup_elem(&scratch, &zero);
	if (st) {
		st->saddr = ip->saddr;
		st->sport = bpf_ntohs(udp->source);
		st->dport = dport;
		st->payload_off = l4 + sizeof(*udp);
		st->payload_len = plen;
	}
	bpf_tail_call(ctx, &prog_array, PROG_SCAN);
	return XDP_PASS;
}

SEC("xdp")
int token_scan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct TokenEvent *ev;
	struct ScanState *st;
	__u32 n, limit, off, i, zero = 0;
	__u8 t0, t1, t2, t3;
	__u8 *payload;

	stage(1);
	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return XDP_PASS;
	n = st->payload_len;
	limit = scan.scan_bytes;
	if (limit > SCAN_MAX)
		limit = SCAN_MAX;
	if (n > limit)
		n = limit;
	if (n < 4) {
		verdict(V_SHORT_PAYLOAD);
		return XDP_PASS;
	}
	off = st->payload_off;
	if (off > MAX_OFF)
		goto clean;
	payload = data + off;
	t0 = scan.token[0];
	t1 = scan.token[1];
	t2 = scan.token[2];
	t3 = scan.token[3];
	for (i = 0; i < n - 3; i++) {
		__u8 *p = payload + i;

		if ((void *)(p + 4) > data_end)
			break;
		if (p[0] == t0 && p[1] == t1 && p[2] == t2 && p[3] == t3) {
			count_match(st->dport);
			verdict(V_MATCHED);
			ev = bpf_ringbuf_reserve(&token_events, sizeof(*ev), 0);
			if (ev) {
				ev->saddr = st->saddr;
				ev->sport = st->sport;
				ev->dport = st->dport;
				ev->offset = i;
				ev->payload_len = st->payload_len;
				bpf_ringbuf_submit(ev, 0);
			}
			return XDP_DROP;
		}
	}
clean:
	verdict(V_CLEAN);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
