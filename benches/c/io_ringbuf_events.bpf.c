// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_ringbuf_events.ks: log TCP SYNs to watched ports
 * as SynEvent records in a ring buffer, counting emitted and lost records. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* 24 bytes, no padding; addresses in network byte order, ports in host order */
struct SynEvent {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u32 ifindex;
	__u16 window;
	__u8 ttl;
	__u8 ip_opts;	/* bytes of IPv4 options before the TCP header */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} watched_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} syn_events SEC(".maps");

__u64 events_emitted = 0;
__u64 events_failed = 0;

SEC("xdp")
int syn_logger(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct SynEvent *e;
	struct tcphdr *tcp;
	__u32 ihl;
	__u16 dport;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;

	dport = bpf_ntohs(tcp->dest);
	if (!bpf_map_lookup_elem(&watched_ports, &dport))
		return XDP_PASS;

	e = bpf_ringbuf_reserve(&syn_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_failed, 1);
		return XDP_PASS;
	}
	e->saddr = ip->saddr;
	e->daddr = ip->daddr;
	e->sport = bpf_ntohs(tcp->source);
	e->dport = dport;
	e->seq = bpf_ntohl(tcp->seq);
	e->ifindex = ctx->ingress_ifindex;
	e->window = bpf_ntohs(tcp->window);
	e->ttl = ip->ttl;
	e->ip_opts = ihl - sizeof(*ip);
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&events_emitted, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
