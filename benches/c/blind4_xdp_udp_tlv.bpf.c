// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_xdp_udp_tlv.ks: walks the TLVs of UDP datagrams sent to the
 * configured port, counts them per type, sums type-1 metrics per source, reports type-7 alerts
 * on a ring buffer and drops payloads whose TLVs overrun the datagram. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define MAX_TLVS 16
#define TLV_METRIC 1
#define TLV_ALERT 7

#define STAT_PARSED 0
#define STAT_MALFORMED 1
#define STAT_CAPPED 2
#define STAT_ALERTS_LOST 3

struct tlv_config {
	__u16 port;
};

struct TlvAlert {
	__u32 src_addr;
	__u32 metric_sum;
	__u16 src_port;
	__u8 index;
	__u8 len;
};

struct tlv_config tlv SEC(".data.tlv") = {
	.port = 4739,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} tlv_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} metric_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} tlv_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} alerts SEC(".maps");

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_add(void *map, __u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(map, &key, &n, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("xdp")
int udp_tlv(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;
	__u32 hlen, udp_len, plen, off = 0, sum = 0, metrics = 0;
	__u8 *payload;
	int i;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return XDP_PASS;
	udp = (void *)ip + hlen;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (bpf_ntohs(udp->dest) != tlv.port)
		return XDP_PASS;

	udp_len = bpf_ntohs(udp->len);
	payload = (__u8 *)(udp + 1);
	if (udp_len < sizeof(*udp) || (void *)payload + (udp_len - sizeof(*udp)) > data_end)
		goto malformed;
	plen = udp_len - sizeof(*udp);

	for (i = 0; i < MAX_TLVS; i++) {
		__u8 *p, kind;
		__u32 len;

		if (off >= plen)
			break;
		p = payload + off;
		if (off + 2 > plen || (void *)(p + 2) > data_end)
			goto malformed;
		kind = p[0];
		len = p[1];
		if (off + 2 + len > plen)
			goto malformed;
		if (kind == TLV_METRIC) {
			if (len != 2 || (void *)(p + 4) > data_end)
				goto malformed;
			sum += (p[2] << 8) | p[3];
			metrics++;
		}
		array_inc(&tlv_types, kind);
		if (kind == TLV_ALERT) {
			struct TlvAlert *ev = bpf_ringbuf_reserve(&alerts, sizeof(*ev), 0);

			if (ev) {
				ev->src_addr = ip->saddr;
				ev->metric_sum = sum;
				ev->src_port = bpf_ntohs(udp->source);
				ev->index = i;
				ev->len = len;
				bpf_ringbuf_submit(ev, 0);
			} else {
				array_inc(&tlv_stats, STAT_ALERTS_LOST);
			}
		}
		off += 2 + len;
	}
	if (off < plen)
		array_inc(&tlv_stats, STAT_CAPPED);
	if (metrics > 0)
		hash_add(&metric_totals, ip->saddr, sum);
	array_inc(&tlv_stats, STAT_PARSED);
	return XDP_PASS;

malformed:
	array_inc(&tlv_stats, STAT_MALFORMED);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
