// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_tcp_options.ks: SYN option policer.
 * Walks at most 10 TCP options, extracts MSS and window scale, drops malformed options,
 * a too-small MSS or a window scale above 14. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define MAX_OPTIONS 10

enum syn_stat {
	STAT_SYNS = 0,
	STAT_WITH_MSS = 1,
	STAT_WITH_WSCALE = 2,
	STAT_SMALL_MSS = 3,
	STAT_BAD_WSCALE = 4,
	STAT_MALFORMED = 5,
	STAT_MAX,
};

struct syn_policy_config {
	__u16 min_mss;
};

struct syn_policy_config syn_policy SEC(".data.syn_policy") = {
	.min_mss = 536,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} syn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} mss_seen SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&syn_stats, &stat);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int syn_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u8 *opt, *opts_end, kind, len, wscale = 0;
	bool has_wscale = false;
	__u16 mss = 0;
	__u64 *v, one = 1;
	int i;

	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (!tcp->syn)
		return XDP_PASS;
	count(STAT_SYNS);

	opts_end = (__u8 *)tcp + tcp->doff * 4;
	opt = (__u8 *)(tcp + 1);
	for (i = 0; i < MAX_OPTIONS; i++) {
		if (opt >= opts_end || opt + 1 > (__u8 *)data_end)
			break;
		kind = opt[0];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			opt++;
			continue;
		}
		if (opt + 2 > (__u8 *)data_end)
			break;
		len = opt[1];
		if (len < 2 || opt + len > opts_end) {
			count(STAT_MALFORMED);
			return XDP_DROP;
		}
		if (kind == TCPOPT_MSS && len == 4) {
			if (opt + 4 > (__u8 *)data_end)
				break;
			mss = (__u16)opt[2] << 8 | opt[3];
		} else if (kind == TCPOPT_WSCALE && len == 3) {
			if (opt + 3 > (__u8 *)data_end)
				break;
			wscale = opt[2];
			has_wscale = true;
		}
		opt += len;
	}

	if (mss) {
		count(STAT_WITH_MSS);
		v = bpf_map_lookup_elem(&mss_seen, &mss);
		if (v)
			__sync_fetch_and_add(v, 1);
		else if (bpf_map_update_elem(&mss_seen, &mss, &one, BPF_NOEXIST) &&
			 (v = bpf_map_lookup_elem(&mss_seen, &mss)))
			__sync_fetch_and_add(v, 1);
		if (mss < syn_policy.min_mss) {
			count(STAT_SMALL_MSS);
			return XDP_DROP;
		}
	}
	if (has_wscale) {
		count(STAT_WITH_WSCALE);
		if (wscale > 14) {
			count(STAT_BAD_WSCALE);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
