// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_port_scan.ks: TCP port-scan detector in XDP.
 * Per-source state (ports probed, last port, flags) is updated in place through the lookup
 * pointer; sources past the configured threshold have their SYNs dropped and are reported
 * once through a ring buffer. Trusted sources are not tracked. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define FLAG_REPORTED 0x01

enum ScanStat {
	Syns = 0,
	Trusted = 1,
	NewSources = 2,
	NewPorts = 3,
	SamePort = 4,
	Reported = 5,
	Dropped = 6,
};

/* 7 bytes and one byte of padding (zeroed when the entry is created) */
struct ScanState {
	__u32 count;
	__u16 last_port;
	__u8 flags;
};

/* record for userspace; address as on the wire, port in host order */
struct ScanEvent {
	__be32 saddr;
	__u16 port;
	__u32 count;
};

/* config scan { threshold: u32 = 20, trusted_net: u32 = 0, trusted_mask: u32 = 0 } */
struct scan_config {
	__u32 threshold;
	__be32 trusted_net;
	__be32 trusted_mask;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __be32);
	__type(value, struct ScanState);
} scan_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} scan_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} scan_stats SEC(".maps");

struct scan_config scan SEC(".data.scan") = {
	.threshold = 20,
	.trusted_net = 0,
	.trusted_mask = 0,
};

__u64 events_lost = 0;

static __always_inline void stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&scan_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int port_scan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct ScanState *s;
	struct tcphdr *tcp;
	__u32 ihl;
	__be32 src;
	__u16 dport;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;
	stat(Syns);

	src = ip->saddr;
	if (scan.trusted_mask && (src & scan.trusted_mask) == scan.trusted_net) {
		stat(Trusted);
		return XDP_PASS;
	}

	dport = bpf_ntohs(tcp->dest);
	s = bpf_map_lookup_elem(&scan_sources, &src);
	if (!s) {
		struct ScanState fresh;

		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.count = 1;
		fresh.last_port = dport;
		bpf_map_update_elem(&scan_sources, &src, &fresh, BPF_ANY);
		stat(NewSources);
		return XDP_PASS;
	}

	if (dport == s->last_port) {
		stat(SamePort);
	} else {
		s->count += 1;
		s->last_port = dport;
		stat(NewPorts);
	}
	if (s->count <= scan.threshold)
		return XDP_PASS;

	if (!(s->flags & FLAG_REPORTED)) {
		struct ScanEvent *e;

		s->flags |= FLAG_REPORTED;
		stat(Reported);
		e = bpf_ringbuf_reserve(&scan_events, sizeof(*e), 0);
		if (e) {
			e->saddr = src;
			e->port = dport;
			e->count = s->count;
			bpf_ringbuf_submit(e, 0);
		} else {
			__sync_fetch_and_add(&events_lost, 1);
		}
	}
	stat(Dropped);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
