// SPDX-License-Identifier: GPL-2.0
// blind15_xdp_tcp_window_probe.bpf.c — C twin of blind15_xdp_tcp_window_probe.ks:
// XDP TCP flow watcher tracking advertised receive windows per 5-tuple.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum drop_reason {
	DROP_TRUNC_IP = 1,
	DROP_BAD_IHL = 2,
	DROP_TRUNC_TCP = 3,
	DROP_BAD_DOFF = 4,
	DROP_TRUNC_OPTS = 5,
	DROP_BAD_LEN = 6,
	DROP_WINDOW_VIOLATION = 7,
};

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct flow_state {
	__u64 packets;
	__u32 zero_windows;
	__u16 last_window;
	__u8 flags_seen;
};

struct probe_config {
	bool drop_violations;
	__u16 shrink_slack;
};

struct probe_config probe SEC(".data.probe") = {
	.drop_violations = false,
	.shrink_slack = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

__u64 new_flows = 0;
__u64 zero_window_segs = 0;
__u64 window_shrinks = 0;

SEC("xdp")
int tcp_window_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	struct flow_key key;
	struct flow_state *st;
	__u32 ip_hlen, tcp_hlen, tot_len, payload, zw = 0, reason;
	__u64 *cnt;
	__u16 window;
	__u8 flags;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end) {
		reason = DROP_TRUNC_IP;
		goto drop;
	}
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->ihl < 5) {
		reason = DROP_BAD_IHL;
		goto drop;
	}
	ip_hlen = ip->ihl * 4;

	tcp = (void *)ip + ip_hlen;
	if ((void *)(tcp + 1) > data_end) {
		reason = DROP_TRUNC_TCP;
		goto drop;
	}
	if (tcp->doff < 5) {
		reason = DROP_BAD_DOFF;
		goto drop;
	}
	tcp_hlen = tcp->doff * 4;
	if ((void *)tcp + tcp_hlen > data_end) {
		reason = DROP_TRUNC_OPTS;
		goto drop;
	}

	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ip_hlen + tcp_hlen) {
		reason = DROP_BAD_LEN;
		goto drop;
	}
	payload = tot_len - ip_hlen - tcp_hlen;

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	key.proto = IPPROTO_TCP;

	window = bpf_ntohs(tcp->window);
	flags = ((__u8 *)tcp)[13];
	if (window == 0) {
		zw = 1;
		__sync_fetch_and_add(&zero_window_segs, 1);
	}

	st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		struct flow_state ns;

		__builtin_memset(&ns, 0, sizeof(ns));
		ns.packets = 1;
		ns.zero_windows = zw;
		ns.last_window = window;
		ns.flags_seen = flags;
		bpf_map_update_elem(&flows, &key, &ns, BPF_ANY);
		__sync_fetch_and_add(&new_flows, 1);
	} else {
		st->packets += 1;
		st->zero_windows += zw;
		st->flags_seen |= flags;
		if ((__u32)window + probe.shrink_slack < st->last_window)
			__sync_fetch_and_add(&window_shrinks, 1);
		st->last_window = window;
	}

	if (window == 0 && payload > 0 && probe.drop_violations) {
		reason = DROP_WINDOW_VIOLATION;
		goto drop;
	}
	return XDP_PASS;

drop:
	cnt = bpf_map_lookup_elem(&drops, &reason);
	if (cnt)
		*cnt += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
