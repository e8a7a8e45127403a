// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_tcp_flags.ks: classify IPv4 TCP segments by
 * their flag combination into per-CPU counters; drop XMAS, NULL and SYN+FIN scan probes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

/* the byte of a TCP header that holds FIN..CWR */
#define tcp_flag_byte(th) (((__u8 *)(th))[13])

enum flag_class {
	CLASS_SYN = 0,
	CLASS_SYN_ACK = 1,
	CLASS_FIN = 2,
	CLASS_RST = 3,
	CLASS_ACK_ONLY = 4,
	CLASS_OTHER = 5,
	CLASS_XMAS_SCAN = 6,
	CLASS_NULL_SCAN = 7,
	CLASS_SYN_FIN = 8,
	CLASS_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} flag_classes SEC(".maps");

__u64 scans_dropped = 0;

static __always_inline __u32 classify(__u8 flags)
{
	switch (flags & 0x3F) {
	case TCP_SYN:
		return CLASS_SYN;
	case TCP_SYN | TCP_ACK:
		return CLASS_SYN_ACK;
	case TCP_ACK:
		return CLASS_ACK_ONLY;
	case TCP_RST:
	case TCP_RST | TCP_ACK:
		return CLASS_RST;
	case 0:
		return CLASS_NULL_SCAN;
	case TCP_FIN | TCP_PSH | TCP_URG:
		return CLASS_XMAS_SCAN;
	default:
		if ((flags & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN))
			return CLASS_SYN_FIN;
		if (flags & TCP_FIN)
			return CLASS_FIN;
		return CLASS_OTHER;
	}
}

SEC("xdp")
int tcp_flags(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 ihl, cls;
	__u64 *cnt;

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

	cls = classify(tcp_flag_byte(tcp));
	cnt = bpf_map_lookup_elem(&flag_classes, &cls);
	if (cnt)
		*cnt += 1;	/* per-CPU slot */

	switch (cls) {
	case CLASS_XMAS_SCAN:
	case CLASS_NULL_SCAN:
	case CLASS_SYN_FIN:
		__sync_fetch_and_add(&scans_dropped, 1);
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "GPL";
