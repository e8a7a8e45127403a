// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_xdp_arp_watch.ks: learns IPv4 -> MAC bindings from
 * Ethernet/IPv4 ARP replies, counts conflicting replies, replaces the binding (relearn) and
 * drops conflicting gratuitous replies (drop_gratuitous). Senders outside subnet/mask are
 * ignored; truncated ARP frames are dropped.
 * .bss: truncated@0, foreign_arp@8, last_conflict_ip@16. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_ARP 0x0806
#define ETH_P_IP 0x0800
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

enum {
	EV_REQUEST = 0,
	EV_REPLY = 1,
	EV_OTHER_OP = 2,
	EV_PROBE = 3,
	EV_LEARNED = 4,
	EV_REFRESHED = 5,
	EV_CONFLICT = 6,
	EV_DROPPED = 7,
};

struct arp_watch_config {
	__u32 subnet;
	__u32 mask;
	bool relearn;
	bool drop_gratuitous;
};

struct arp_watch_config arp_watch SEC(".data.arp_watch") = {
	.subnet = 0,
	.mask = 0,
	.relearn = true,
	.drop_gratuitous = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} arp_events SEC(".maps");

__u64 truncated = 0;
__u64 foreign_arp = 0;
__u32 last_conflict_ip = 0;

/* ARP for IPv4 over Ethernet */
struct arp_eth_ipv4 {
	struct arphdr hdr;
	__u8 ar_sha[6];
	__u8 ar_sip[4];
	__u8 ar_tha[6];
	__u8 ar_tip[4];
};

static __always_inline void count_event(__u32 ev)
{
	__u64 *v = bpf_map_lookup_elem(&arp_events, &ev);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 ip_host(const __u8 *b)
{
	return (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
}

SEC("xdp")
int arp_watch_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct arp_eth_ipv4 *arp = (void *)(eth + 1);
	__u32 op, sender, target;
	__u64 mac, *known;
	int i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_ARP))
		return XDP_PASS;
	if ((void *)(arp + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return XDP_DROP;
	}
	if (arp->hdr.ar_hrd != bpf_htons(1) || arp->hdr.ar_pro != bpf_htons(ETH_P_IP) ||
	    arp->hdr.ar_hln != 6 || arp->hdr.ar_pln != 4) {
		__sync_fetch_and_add(&foreign_arp, 1);
		return XDP_PASS;
	}

	op = bpf_ntohs(arp->hdr.ar_op);
	if (op == ARPOP_REQUEST) {
		count_event(EV_REQUEST);
	} else if (op == ARPOP_REPLY) {
		count_event(EV_REPLY);
	} else {
		count_event(EV_OTHER_OP);
		return XDP_PASS;
	}

	sender = ip_host(arp->ar_sip);
	target = ip_host(arp->ar_tip);
	if (!sender) {
		count_event(EV_PROBE);
		return XDP_PASS;
	}
	if ((sender & arp_watch.mask) != arp_watch.subnet)
		return XDP_PASS;
	if (op != ARPOP_REPLY)
		return XDP_PASS;

	mac = 0;
#pragma unroll
	for (i = 0; i < 6; i++)
		mac = mac << 8 | arp->ar_sha[i];

	known = bpf_map_lookup_elem(&bindings, &sender);
	if (!known) {
		bpf_map_update_elem(&bindings, &sender, &mac, BPF_ANY);
		count_event(EV_LEARNED);
		return XDP_PASS;
	}
	if (*known == mac) {
		count_event(EV_REFRESHED);
		return XDP_PASS;
	}

	count_event(EV_CONFLICT);
	last_conflict_ip = sender;
	if (sender == target && arp_watch.drop_gratuitous) {
		count_event(EV_DROPPED);
		return XDP_DROP;
	}
	if (arp_watch.relearn)
		*known = mac;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
