// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind7_xdp_udp_amp_guard.ks: drops IPv4/UDP
 * responses from the DNS, NTP, SSDP, memcached and chargen ports whose UDP length is above
 * the per-service limit, counting drops per service and per destination address; other
 * inspected UDP packets are counted as passed, later fragments and bad UDP lengths apart. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET_MASK 0x1fff

enum {
	SVC_DNS = 0,
	SVC_NTP = 1,
	SVC_SSDP = 2,
	SVC_MEMCACHED = 3,
	SVC_CHARGEN = 4,
};

/* config amp_guard { dns_max, ntp_max, ssdp_max, memcached_max, chargen_max: u16 } */
struct amp_guard_config {
	__u16 dns_max;
	__u16 ntp_max;
	__u16 ssdp_max;
	__u16 memcached_max;
	__u16 chargen_max;
};

struct amp_guard_config amp_guard SEC(".data.amp_guard") = {
	.dns_max = 512,
	.ntp_max = 56,
	.ssdp_max = 320,
	.memcached_max = 64,
	.chargen_max = 8,
};

/* SVC_* -> dropped responses */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} service_drops SEC(".maps");

/* destination address (host order) -> dropped responses */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} victim_drops SEC(".maps");

/* .bss, in declaration order */
__u64 passed = 0;
__u64 fragments = 0;
__u64 malformed = 0;

SEC("xdp")
int udp_amp_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u32 service, limit, victim, udp_len;
	__u64 one = 1, *cnt;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	/* the ports are in the first fragment only */
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}

	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < sizeof(*udp)) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	switch (bpf_ntohs(udp->source)) {
	case 53:
		service = SVC_DNS;
		limit = amp_guard.dns_max;
		break;
	case 123:
		service = SVC_NTP;
		limit = amp_guard.ntp_max;
		break;
	case 1900:
		service = SVC_SSDP;
		limit = amp_guard.ssdp_max;
		break;
	case 11211:
		service = SVC_MEMCACHED;
		limit = amp_guard.memcached_max;
		break;
	case 19:
		service = SVC_CHARGEN;
		limit = amp_guard.chargen_max;
		break;
	default:
		__sync_fetch_and_add(&passed, 1);
		return XDP_PASS;
	}

	if (udp_len > limit) {
		cnt = bpf_map_lookup_elem(&service_drops, &service);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);

		/* victim_drops[victim] += 1, inserting the entry when missing */
		victim = bpf_ntohl(ip->daddr);
		cnt = bpf_map_lookup_elem(&victim_drops, &victim);
		if (cnt) {
			__sync_fetch_and_add(cnt, 1);
		} else if (bpf_map_update_elem(&victim_drops, &victim, &one, BPF_NOEXIST)) {
			cnt = bpf_map_lookup_elem(&victim_drops, &victim);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
		}
		return XDP_DROP;
	}

	__sync_fetch_and_add(&passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
