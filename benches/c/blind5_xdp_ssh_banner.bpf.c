// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_ssh_banner.ks: classifies the first payload bytes of
 * IPv4 TCP segments to the SSH port as SSH-2.0 / SSH-1.99 / SSH-1 banners or other payload,
 * counts them, counts segments whose IP length runs past the frame, and drops legacy SSH-1
 * banners when drop_v1 is set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define SLOT_V2 0
#define SLOT_V1_99 1
#define SLOT_V1 2
#define SLOT_OTHER 3
#define SLOT_TRUNCATED 4

struct ssh_config {
	__u16 port;
	bool drop_v1;
};

struct ssh_config ssh SEC(".data.ssh") = {
	.port = 22,
	.drop_v1 = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} banner_stats SEC(".maps");

__u64 segments_seen = 0;
__u64 v1_dropped = 0;

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&banner_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 banner_kind(const char *p, const void *end, __u32 plen)
{
	if (plen < 6 || (const void *)(p + 6) > end)
		return SLOT_OTHER;
	if (p[0] != 'S' || p[1] != 'S' || p[2] != 'H' || p[3] != '-' || p[5] != '.')
		return SLOT_OTHER;
	if (p[4] == '1') {
		if (plen >= 8 && (const void *)(p + 8) <= end && p[6] == '9' && p[7] == '9')
			return SLOT_V1_99;
		return SLOT_V1;
	}
	if (p[4] == '2' && plen >= 8 && (const void *)(p + 8) <= end && p[6] == '0' && p[7] == '-')
		return SLOT_V2;
	return SLOT_OTHER;
}

SEC("xdp")
int ssh_banner(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *tcp;
	__u32 ihl, doff, tot, plen, slot;

	if (data + 54 > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (bpf_ntohs(tcp->dest) != ssh.port)
		return XDP_PASS;
	doff = tcp->doff * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (doff < sizeof(*tcp) || tot <= ihl + doff)
		return XDP_PASS;
	__sync_fetch_and_add(&segments_seen, 1);
	if (data + sizeof(*eth) + tot > data_end) {
		stat_inc(SLOT_TRUNCATED);
		return XDP_PASS;
	}
	plen = tot - ihl - doff;
	slot = banner_kind((const char *)tcp + doff, data_end, plen);
	stat_inc(slot);
	if (slot == SLOT_V1 && ssh.drop_v1) {
		__sync_fetch_and_add(&v1_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
