// SPDX-License-Identifier: GPL-2.0
// blind14_tc_arp_guard.bpf.c — C twin of blind14_tc_arp_guard.ks: ARP spoofing guard on tc ingress.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_ARP	0x0806
#define ETH_P_IP	0x0800
#define ARPOP_REQUEST	1
#define ARPOP_REPLY	2

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2

enum outcome {
	OUT_MALFORMED = 0,
	OUT_OTHER_OP = 1,
	OUT_REQUEST = 2,
	OUT_KNOWN = 3,
	OUT_LEARNED = 4,
	OUT_UNKNOWN = 5,
	OUT_CONFLICT_SEEN = 6,
	OUT_CONFLICT_DROPPED = 7,
};

/* ARP for Ethernet/IPv4 */
struct arp_eth {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 ar_sha[6];
	__u8 ar_sip[4];
	__u8 ar_tha[6];
	__u8 ar_tip[4];
};

struct binding {
	__u8 mac[6];
	__u8 pinned;
	__u8 pad;
};

struct arp_event {
	__u32 ip;
	__u8 old_mac[6];
	__u8 new_mac[6];
	__u32 ifindex;
};

struct arpguard_config {
	bool enforce;
	bool learn;
};

struct arpguard_config arpguard SEC(".data.arpguard") = {
	.enforce = false,
	.learn = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);		/* IPv4 address as on the wire */
	__type(value, struct binding);
} bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} conflicts SEC(".maps");

__u64 arp_seen = 0;
__u64 events_lost = 0;

static __always_inline void count(__u32 outcome)
{
	__u64 *c = bpf_map_lookup_elem(&outcomes, &outcome);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

SEC("tcx/ingress")
int arp_guard(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp;
	struct binding *b;
	struct arp_event *ev;
	__u32 sip;
	__u16 op;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;
	__sync_fetch_and_add(&arp_seen, 1);

	arp = (void *)(eth + 1);
	if ((void *)(arp + 1) > data_end ||
	    arp->ar_hrd != bpf_htons(1) || arp->ar_pro != bpf_htons(ETH_P_IP) ||
	    arp->ar_hln != 6 || arp->ar_pln != 4) {
		count(OUT_MALFORMED);
		return TC_ACT_SHOT;
	}

	op = bpf_ntohs(arp->ar_op);
	sip = *(__u32 *)arp->ar_sip;
	if (op == ARPOP_REQUEST) {
		if (sip != *(__u32 *)arp->ar_tip) {
			count(OUT_REQUEST);
			return TC_ACT_OK;
		}
	} else if (op != ARPOP_REPLY) {
		count(OUT_OTHER_OP);
		return TC_ACT_OK;
	}

	/* a reply or a gratuitous request announces sip at ar_sha */
	b = bpf_map_lookup_elem(&bindings, &sip);
	if (b) {
		if (mac_eq(b->mac, arp->ar_sha)) {
			count(OUT_KNOWN);
			return TC_ACT_OK;
		}
		ev = bpf_ringbuf_reserve(&conflicts, sizeof(*ev), 0);
		if (ev) {
			ev->ip = sip;
			__builtin_memcpy(ev->old_mac, b->mac, 6);
			__builtin_memcpy(ev->new_mac, arp->ar_sha, 6);
			ev->ifindex = ctx->ifindex;
			bpf_ringbuf_submit(ev, 0);
		} else {
			__sync_fetch_and_add(&events_lost, 1);
		}
		if (arpguard.enforce || b->pinned) {
			count(OUT_CONFLICT_DROPPED);
			return TC_ACT_SHOT;
		}
		count(OUT_CONFLICT_SEEN);
		return TC_ACT_OK;
	}

	if (arpguard.learn) {
		struct binding nb = { .pinned = 0, .pad = 0 };

		__builtin_memcpy(nb.mac, arp->ar_sha, 6);
		bpf_map_update_elem(&bindings, &sip, &nb, BPF_ANY);
		count(OUT_LEARNED);
	} else {
		count(OUT_UNKNOWN);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
