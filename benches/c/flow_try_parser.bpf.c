// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_try_parser.ks: IPv4 sanity gate.
 * The .ks validator throws the reason a header is malformed; here it returns it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum malformed {
	OK = 0,
	TRUNCATED = 1,
	BAD_VERSION = 2,
	BAD_IHL = 3,
	BAD_LENGTH = 4,
	FRAGMENT = 5,
	TTL_EXPIRED = 6,
	MALFORMED_MAX,
};

struct sanity_config {
	bool allow_fragments;
};

struct sanity_config sanity SEC(".data.sanity") = {
	.allow_fragments = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MALFORMED_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rejected SEC(".maps");

__u64 accepted = 0;

static __always_inline enum malformed validate_ipv4(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 hdr_len, tot_len;

	if ((void *)(ip + 1) > data_end)
		return TRUNCATED;
	if (ip->version != 4)
		return BAD_VERSION;
	hdr_len = ip->ihl * 4;
	if (hdr_len < 20)
		return BAD_IHL;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len || (__u64)tot_len + sizeof(struct ethhdr) > (__u64)(data_end - data))
		return BAD_LENGTH;
	if ((ip->frag_off & bpf_htons(0x3FFF)) && !sanity.allow_fragments)
		return FRAGMENT;
	if (ip->ttl <= 1)
		return TTL_EXPIRED;
	return OK;
}

SEC("xdp")
int ipv4_sanity(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 reason;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	reason = validate_ipv4(data, data_end);
	if (reason == OK) {
		__sync_fetch_and_add(&accepted, 1);
		return XDP_PASS;
	}
	cnt = bpf_map_lookup_elem(&rejected, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	/* let the stack answer with ICMP time exceeded */
	return reason == TTL_EXPIRED ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
