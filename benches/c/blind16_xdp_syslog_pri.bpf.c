// SPDX-License-Identifier: GPL-2.0
// blind16_xdp_syslog_pri.bpf.c — C twin of blind16_xdp_syslog_pri.ks: parse the syslog
// <PRI> prefix of UDP/514 datagrams, count severities and facilities, drop messages above
// the configured severity for muted facilities, count (and optionally drop) malformed ones.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define SYSLOG_PORT	514

struct pri_filter_config {
	__u32 max_severity;
	bool drop_malformed;
};

struct pri_filter_config pri_filter SEC(".data.pri_filter") = {
	.max_severity = 6,
	.drop_malformed = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8);
} sev_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 24);
} fac_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 24);
} muted_facilities SEC(".maps");

__u64 malformed = 0;
__u64 filtered = 0;

/* <PRI> at msg (len message bytes): PRI 0..191, or -1 when malformed. */
static __always_inline int parse_pri(const __u8 *msg, const void *data_end, __u32 len)
{
	__u32 pri = 0, digits = 0;

	if (len < 3 || (const void *)(msg + 1) > data_end || msg[0] != '<')
		return -1;
	for (__u32 i = 1; i < 5; i++) {
		if (i >= len || (const void *)(msg + i + 1) > data_end)
			return -1;
		__u8 c = msg[i];
		if (c == '>')
			return digits && pri <= 191 ? (int)pri : -1;
		if (c < '0' || c > '9' || digits == 3)
			return -1;
		pri = pri * 10 + (c - '0');
		digits++;
	}
	return -1;
}

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int syslog_pri(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	__u32 hl = ip->ihl * 4;
	if (hl < 20)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;

	__u32 l4 = 14 + hl;
	struct udphdr *udp = data + l4;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(SYSLOG_PORT))
		return XDP_PASS;
	__u32 ulen = bpf_ntohs(udp->len);
	if (ulen < 8)
		return XDP_PASS;

	int pri = parse_pri((const __u8 *)(udp + 1), data_end, ulen - 8);
	if (pri < 0) {
		__sync_fetch_and_add(&malformed, 1);
		return pri_filter.drop_malformed ? XDP_DROP : XDP_PASS;
	}

	__u32 facility = (__u32)pri / 8;
	__u32 severity = (__u32)pri % 8;

	count(&sev_count, severity);
	count(&fac_count, facility);
	if (severity > pri_filter.max_severity) {
		__u64 *muted = bpf_map_lookup_elem(&muted_facilities, &facility);

		if (muted) {
			__sync_fetch_and_add(muted, 1);
			__sync_fetch_and_add(&filtered, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
