// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_tcp_mss_clamp.ks: MSS clamping of outgoing
 * SYNs on tc egress. The TCP options (at most 10) are walked for the MSS option; one above the
 * configured maximum is rewritten in place and the TCP checksum fixed with
 * bpf_l4_csum_replace. Clamped SYNs are counted per announced MSS. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define TC_ACT_OK 0
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4
#define MAX_OPTIONS 10

enum { STAT_SYNS = 0, STAT_WITH_MSS = 1, STAT_CLAMPED = 2, STAT_BAD_OPTION = 3, STAT_NO_MSS = 4,
       STAT_MAX };

/* config clamp { max_mss: u16 = 1400, enabled: bool = true } */
struct clamp_config {
	__u16 max_mss;
	bool enabled;
};

struct clamp_config clamp SEC(".data.clamp") = {
	.max_mss = 1400,
	.enabled = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} mss_stats SEC(".maps");

/* announced MSS -> SYNs clamped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} clamped_from SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&mss_stats, &stat);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* clamped_from[mss] += 1, creating the entry when missing */
static __always_inline void count_clamped(__u16 mss)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&clamped_from, &mss);

	if (!v) {
		if (!bpf_map_update_elem(&clamped_from, &mss, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&clamped_from, &mss);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

/* Frame offset of the MSS option among the options in [off, end): 0 when there is none
 * within the first MAX_OPTIONS options, -1 for a malformed option. */
static __always_inline int find_mss(struct __sk_buff *skb, __u32 off, __u32 end)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *opt;
	__u32 len;
	int i;

	for (i = 0; i < MAX_OPTIONS; i++) {
		if (off >= end)
			break;
		opt = data + off;
		if ((void *)(opt + 1) > data_end)
			break;
		if (opt[0] == TCPOPT_EOL)
			break;
		if (opt[0] == TCPOPT_NOP) {
			off++;
			continue;
		}
		if ((void *)(opt + 2) > data_end)
			return -1;
		len = opt[1];
		if (len < 2 || off + len > end)
			return -1;
		if (opt[0] == TCPOPT_MSS)
			return len == TCPOLEN_MSS ? (int)off : -1;
		off += len;
	}
	return 0;
}

SEC("tcx/egress")
int mss_clamp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 tcp_off;
	__u16 mss, limit;
	__u8 *opt;
	int mss_off;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	if (ip->version != 4 || ip->ihl < 5)
		return TC_ACT_OK;
	tcp_off = ETH_HLEN + ip->ihl * 4;
	tcp = data + tcp_off;
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	if (!tcp->syn)
		return TC_ACT_OK;
	count(STAT_SYNS);

	mss_off = find_mss(skb, tcp_off + sizeof(*tcp), tcp_off + tcp->doff * 4);
	if (mss_off < 0) {
		count(STAT_BAD_OPTION);
		return TC_ACT_OK;
	}
	if (mss_off == 0) {
		count(STAT_NO_MSS);
		return TC_ACT_OK;
	}
	count(STAT_WITH_MSS);

	opt = data + mss_off;
	if ((void *)(opt + TCPOLEN_MSS) > data_end)
		return TC_ACT_OK;
	mss = (__u16)opt[2] << 8 | opt[3];
	if (!clamp.enabled)
		return TC_ACT_OK;
	limit = clamp.max_mss;
	if (mss <= limit)
		return TC_ACT_OK;
	opt[2] = limit >> 8;
	opt[3] = limit & 0xff;
	/* the helper may move the packet: nothing reads it afterwards */
	bpf_l4_csum_replace(skb, tcp_off + offsetof(struct tcphdr, check), bpf_htons(mss),
			    bpf_htons(limit), sizeof(__u16));
	count_clamped(mss);
	count(STAT_CLAMPED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
