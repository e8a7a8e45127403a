// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_tcp_anomaly.ks: classifies IPv4 TCP segments by flag
 * anomaly (bad data offset, NULL, XMAS, SYN+FIN, SYN+RST, FIN without ACK, port 0, SYN with
 * data), counts each kind in `anomalies` and the source address (host order) in `offenders`,
 * and drops the kinds whose bit is set in tcp_anomaly.drop_mask. Later fragments and non-TCP
 * pass; TCP headers cut by the frame are dropped.
 * .bss: tcp_segments@0, clean_segments@8, truncated@16, dropped@24. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

enum {
	A_BAD_DOFF = 0,
	A_NULL = 1,
	A_XMAS = 2,
	A_SYN_FIN = 3,
	A_SYN_RST = 4,
	A_FIN_NO_ACK = 5,
	A_PORT_ZERO = 6,
	A_SYN_DATA = 7,
};

struct tcp_anomaly_config {
	__u32 drop_mask;
	bool track_offenders;
};

struct tcp_anomaly_config tcp_anomaly SEC(".data.tcp_anomaly") = {
	.drop_mask = 0x7f,
	.track_offenders = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} anomalies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} offenders SEC(".maps");

__u64 tcp_segments = 0;
__u64 clean_segments = 0;
__u64 truncated = 0;
__u64 dropped = 0;

SEC("xdp")
int tcp_anomaly_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 ihl, doff, flags, kind, src;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	/* a later fragment has no TCP header */
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;

	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&tcp_segments, 1);

	doff = tcp->doff * 4;
	flags = ((__u8 *)tcp)[13] & 0x3f;

	if (doff < sizeof(*tcp))
		kind = A_BAD_DOFF;
	else if (flags == 0)
		kind = A_NULL;
	else if ((flags & (TH_FIN | TH_PSH | TH_URG)) == (TH_FIN | TH_PSH | TH_URG))
		kind = A_XMAS;
	else if ((flags & (TH_SYN | TH_FIN)) == (TH_SYN | TH_FIN))
		kind = A_SYN_FIN;
	else if ((flags & (TH_SYN | TH_RST)) == (TH_SYN | TH_RST))
		kind = A_SYN_RST;
	else if ((flags & (TH_FIN | TH_ACK)) == TH_FIN)
		kind = A_FIN_NO_ACK;
	else if (tcp->source == 0 || tcp->dest == 0)
		kind = A_PORT_ZERO;
	else if ((flags & TH_SYN) && bpf_ntohs(ip->tot_len) > ihl + doff)
		kind = A_SYN_DATA;
	else {
		__sync_fetch_and_add(&clean_segments, 1);
		return XDP_PASS;
	}

	cnt = bpf_map_lookup_elem(&anomalies, &kind);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	if (tcp_anomaly.track_offenders) {
		src = bpf_ntohl(ip->saddr);
		cnt = bpf_map_lookup_elem(&offenders, &src);
		if (cnt) {
			__sync_fetch_and_add(cnt, 1);
		} else {
			__u64 one = 1;

			if (bpf_map_update_elem(&offenders, &src, &one, BPF_NOEXIST)) {
				cnt = bpf_map_lookup_elem(&offenders, &src);
				if (cnt)
					__sync_fetch_and_add(cnt, 1);
			}
		}
	}
	if ((tcp_anomaly.drop_mask >> kind) & 1) {
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
