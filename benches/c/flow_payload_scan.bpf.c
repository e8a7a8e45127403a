// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_payload_scan.ks: drop UDP datagrams to the
 * protected port that carry a 4-byte signature in the first 64 bytes of their payload. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define SCAN_LIMIT 64

struct scan_config {
	__u16 port;
	__u32 signature;
};

struct scan_config scan SEC(".data.scan") = {
	.port = 11211,
	.signature = 0xdeadbeef,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

__u64 scanned = 0;

SEC("xdp")
int payload_scan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *payload = (void *)(udp + 1), *p;
	__u32 n, i, window = 0;
	__u16 udp_len;
	__u64 *v, one = 1;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (bpf_ntohs(udp->dest) != scan.port)
		return XDP_PASS;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < sizeof(*udp))
		return XDP_DROP;
	n = udp_len - sizeof(*udp);
	if (n > SCAN_LIMIT)
		n = SCAN_LIMIT;
	__sync_fetch_and_add(&scanned, 1);

	for (i = 0; i < SCAN_LIMIT; i++) {
		if (i >= n)
			break;
		p = payload + i;
		if (p + 1 > (__u8 *)data_end)
			break;
		window = window << 8 | *p;
		if (i >= 3 && window == scan.signature) {
			__u32 saddr = ip->saddr;

			v = bpf_map_lookup_elem(&hits, &saddr);
			if (v)
				__sync_fetch_and_add(v, 1);
			else if (bpf_map_update_elem(&hits, &saddr, &one, BPF_NOEXIST) &&
				 (v = bpf_map_lookup_elem(&hits, &saddr)))
				__sync_fetch_and_add(v, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
