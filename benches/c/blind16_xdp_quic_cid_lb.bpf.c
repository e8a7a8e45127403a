// SPDX-License-Identifier: GPL-2.0
/* blind16_xdp_quic_cid_lb.bpf.c — C twin of blind16_xdp_quic_cid_lb.ks.
 * QUIC (UDP/443) load balancer: route by the first 8 bytes of the destination
 * connection ID, fall back to a flow-hash slot, bounce the frame with XDP_TX.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define ETH_ALEN		6
#define QUIC_PORT		443
#define QUIC_LONG_HEADER	0x80
#define MAX_CID_LEN		20
#define SHORT_DCID_LEN		8
#define NSLOTS			16

struct backend {
	__u32 ifindex;
	__u8 mac[ETH_ALEN];
};

struct slot_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct backend);
} cid_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSLOTS);
	__type(key, __u32);
	__type(value, struct backend);
} fallback SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NSLOTS);
	__type(key, __u32);
	__type(value, struct slot_stats);
} slot_stats SEC(".maps");

__u64 cid_routed = 0;
__u64 fallback_routed = 0;
__u64 bad_cid_len = 0;
__u64 truncated = 0;

static __always_inline __u32 flow_slot(__u32 saddr, __u16 sport)
{
	__u32 h = saddr ^ ((__u32)sport << 16 | sport);

	h ^= h >> 16;
	h *= 0x85EBCA6B;
	h ^= h >> 13;
	h *= 0xC2B2AE35;
	h ^= h >> 16;
	return h % NSLOTS;
}

static __always_inline int bounce(struct ethhdr *eth, const __u8 *mac)
{
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return XDP_TX;
}

static __always_inline int drop_truncated(void)
{
	__sync_fetch_and_add(&truncated, 1);
	return XDP_DROP;
}

SEC("xdp")
int quic_cid_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;

	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(QUIC_PORT))
		return XDP_PASS;

	__u8 *quic = (__u8 *)(udp + 1);
	if ((void *)(quic + 1) > data_end)
		return drop_truncated();

	__u64 key = 0;
	bool have_key = false;
	if (quic[0] & QUIC_LONG_HEADER) {
		/* flags(1) version(4) dcid_len(1) dcid */
		if ((void *)(quic + 6) > data_end)
			return drop_truncated();
		if (*(__u32 *)(quic + 1) == 0)	/* version negotiation */
			return XDP_PASS;
		__u32 dcid_len = quic[5];
		if (dcid_len > MAX_CID_LEN) {
			__sync_fetch_and_add(&bad_cid_len, 1);
			return XDP_DROP;
		}
		if ((void *)(quic + 6 + dcid_len) > data_end)
			return drop_truncated();
		if (dcid_len >= SHORT_DCID_LEN) {
			if ((void *)(quic + 6 + SHORT_DCID_LEN) > data_end)
				return XDP_PASS;	/* unreachable: dcid_len >= 8 */
			key = *(__u64 *)(quic + 6);
			have_key = true;
		}
	} else {
		if ((void *)(quic + 1 + SHORT_DCID_LEN) > data_end)
			return drop_truncated();
		key = *(__u64 *)(quic + 1);
		have_key = true;
	}

	if (have_key) {
		struct backend *be = bpf_map_lookup_elem(&cid_backends, &key);
		if (be) {
			__sync_fetch_and_add(&cid_routed, 1);
			return bounce(eth, be->mac);
		}
	}

	__u32 slot = flow_slot(ip->saddr, udp->source);
	struct backend *fb = bpf_map_lookup_elem(&fallback, &slot);
	if (!fb || !fb->ifindex)
		return XDP_PASS;

	struct slot_stats *st = bpf_map_lookup_elem(&slot_stats, &slot);
	if (st) {
		st->packets += 1;
		st->bytes += data_end - data;
	}
	__sync_fetch_and_add(&fallback_routed, 1);
	return bounce(eth, fb->mac);
}

char LICENSE[] SEC("license") = "GPL";
