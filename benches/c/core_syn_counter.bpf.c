// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_syn_counter.ks: count TCP SYNs
 * (SYN set, ACK clear) per IPv4 source and drop them once a source exceeds the
 * configured limit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

/* config syn_limit { max_syns: u32 = 100 } */
struct syn_limit_config {
	__u32 max_syns;
};

struct syn_limit_config syn_limit SEC(".data.syn_limit") = {
	.max_syns = 100,
};

/* key: source address (host byte order); value: SYNs seen */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} syn_counts SEC(".maps");

/* .bss, in declaration order */
__u64 syn_total = 0;
__u64 syn_dropped = 0;

/* syn_counts[src] += 1, returning the new count (0 if the map is full) */
static __always_inline __u64 count_syn(__u32 *src)
{
	__u64 one = 1, *cnt;

	cnt = bpf_map_lookup_elem(&syn_counts, src);
	if (cnt)
		return __sync_add_and_fetch(cnt, 1);
	if (!bpf_map_update_elem(&syn_counts, src, &one, BPF_NOEXIST))
		return 1;
	/* another CPU created the entry in between */
	cnt = bpf_map_lookup_elem(&syn_counts, src);
	return cnt ? __sync_add_and_fetch(cnt, 1) : 0;
}

SEC("xdp")
int syn_counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 src;
	__u64 count;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_DROP;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)	/* not a SYN, or a SYN-ACK */
		return XDP_PASS;

	__sync_fetch_and_add(&syn_total, 1);
	src = bpf_ntohl(ip->saddr);
	count = count_syn(&src);

	if (count > syn_limit.max_syns) {
		__sync_fetch_and_add(&syn_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
