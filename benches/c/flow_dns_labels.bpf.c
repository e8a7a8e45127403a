// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_dns_labels.ks: walk the labels of the DNS
 * question name and drop names over the configured label count or length. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define WALK_LIMIT 32	/* labels looked at, at most */

enum outcome {
	ACCEPTED = 0,
	TOO_MANY_LABELS = 1,
	LONG_NAME = 2,
	BAD_LABEL = 3,
	TRUNCATED = 4,
	OUTCOME_MAX,
};

struct dns_limits_config {
	__u32 max_labels;
	__u32 max_name_len;
};

struct dns_limits_config dns_limits SEC(".data.dns_limits") = {
	.max_labels = 8,
	.max_name_len = 100,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OUTCOME_MAX);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

__u32 longest_name = 0;

SEC("xdp")
int dns_labels(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *p = (__u8 *)(udp + 1) + DNS_HDR_LEN;
	__u32 max_labels, max_name_len;
	__u32 labels = 0, name_len = 0, len, outcome = TOO_MANY_LABELS;
	__u64 *cnt;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (udp->dest != bpf_htons(DNS_PORT))
		return XDP_PASS;

	max_labels = dns_limits.max_labels;
	max_name_len = dns_limits.max_name_len;
	while (labels < WALK_LIMIT) {
		if (p + 1 > (__u8 *)data_end) {
			outcome = TRUNCATED;
			break;
		}
		len = *p;
		if (len == 0) {
			outcome = ACCEPTED;
			break;
		}
		if (len > 63) {
			outcome = BAD_LABEL;
			break;
		}
		labels++;
		name_len += len + 1;
		if (labels > max_labels)
			break;
		if (name_len > max_name_len) {
			outcome = LONG_NAME;
			break;
		}
		p += len + 1;
	}

	cnt = bpf_map_lookup_elem(&outcomes, &outcome);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (outcome != ACCEPTED)
		return XDP_DROP;
	if (name_len > longest_name)
		longest_name = name_len;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
