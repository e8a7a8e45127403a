// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/syn_watch.ks: count incoming TCP SYNs (optionally
 * to one port) in globals and a pinned lifetime counter, and report every
 * watch.report_every-th SYN through a ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* config watch { port: u16 = 0, report_every: u32 = 1000 } */
struct watch_config {
	__u16 port;		/* 0 = any destination port */
	__u32 report_every;
};

/* ring-buffer record (16 bytes, 4 of them tail padding) */
struct Tick {
	__u64 total;
	__u32 src;		/* network byte order */
};

/* ksc gathers `pin var` globals into one pinned single-entry array */
struct __pinned_globals_t {
	__u64 lifetime_syns;
};

struct watch_config watch SEC(".data.watch") = {
	.port = 0,
	.report_every = 1000,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ticks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct __pinned_globals_t);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} __pinned_globals SEC(".maps");

/* .bss, in this order (the harness compares the section byte for byte) */
__u64 syn_total = 0;		/* shared: this run's count */
__u32 last_src = 0;		/* shared: source of the latest SYN (network order) */
__u32 since_report = 0;		/* kernel-only scratch counter (`local var`) */

SEC("xdp")
int syn_watch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	struct __pinned_globals_t *pinned;
	__u32 zero = 0;
	struct Tick *t;

	/* Ethernet + IPv4 without options + TCP header */
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;

	if (watch.port && bpf_ntohs(tcp->dest) != watch.port)
		return XDP_PASS;

	__sync_fetch_and_add(&syn_total, 1);
	pinned = bpf_map_lookup_elem(&__pinned_globals, &zero);
	if (pinned)
		__sync_fetch_and_add(&pinned->lifetime_syns, 1);
	last_src = ip->saddr;
	if (__sync_add_and_fetch(&since_report, 1) < watch.report_every)
		return XDP_PASS;
	since_report = 0;

	t = bpf_ringbuf_reserve(&ticks, sizeof(*t), 0);
	if (t) {
		t->total = syn_total;
		t->src = ip->saddr;
		bpf_ringbuf_submit(t, 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
