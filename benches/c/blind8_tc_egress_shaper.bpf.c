// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_tc_egress_shaper.ks: egress traffic classes on tc. The class
 * comes from the DSCP, or for best effort from the TCP/UDP destination port; large best-effort
 * packets are bulk, large real-time packets are demoted to best effort, scavenger traffic is
 * dropped when configured. Kept packets get the class's skb priority and mark_base + class.
 * Per-class packets/bytes/drops live in a per-CPU hash (plain updates: no other CPU writes a
 * slot). The config is read once where the .ks reads it more than once (same values). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET 0x1fff

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum TrafficClass {
	Control = 0,
	Realtime = 1,
	Interactive = 2,
	BestEffort = 3,
	Bulk = 4,
	Scavenger = 5,
};

struct shaper_config {
	__u32 rt_max_len;
	__u32 bulk_min_len;
	__u16 backup_port;
	bool drop_scavenger;
	__u32 mark_base;
};

struct shaper_config shaper SEC(".data.shaper") = {
	.rt_max_len = 400,
	.bulk_min_len = 1200,
	.backup_port = 9102,
	.drop_scavenger = false,
	.mark_base = 0x5000,
};

struct ClassStats {
	__u64 packets;
	__u64 bytes;
	__u64 drops;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct ClassStats);
} class_stats SEC(".maps");

/* .bss, in declaration order */
__u64 non_ip = 0;
__u64 demoted = 0;

static __always_inline __u32 class_of_dscp(__u8 dscp)
{
	switch (dscp) {
	case 48:	/* CS6 */
	case 56:	/* CS7 */
		return Control;
	case 46:	/* EF */
	case 44:	/* VOICE-ADMIT */
		return Realtime;
	case 34:	/* AF41 */
	case 36:	/* AF42 */
	case 38:	/* AF43 */
		return Interactive;
	case 8:		/* CS1 */
	case 1:		/* LE */
		return Scavenger;
	default:
		return BestEffort;
	}
}

static __always_inline __u32 class_of_port(__u16 port, __u16 backup_port)
{
	if (port == backup_port)
		return Bulk;
	switch (port) {
	case 22:
	case 53:
	case 123:
		return Interactive;
	case 5060:
	case 5004:
		return Realtime;
	case 873:
		return Bulk;
	default:
		return BestEffort;
	}
}

static __always_inline __u32 class_priority(__u32 cls)
{
	switch (cls) {
	case Control:
		return 7;
	case Realtime:
		return 6;
	case Interactive:
		return 4;
	case BestEffort:
		return 2;
	case Bulk:
		return 1;
	default:
		return 0;
	}
}

static __always_inline void book(__u32 cls, __u64 len, __u64 drops)
{
	struct ClassStats *s = bpf_map_lookup_elem(&class_stats, &cls);

	if (s) {
		s->packets += 1;
		s->bytes += len;
		s->drops += drops;
	} else {
		struct ClassStats init = { .packets = 1, .bytes = len, .drops = drops };

		bpf_map_update_elem(&class_stats, &cls, &init, BPF_ANY);
	}
}

SEC("tcx/egress")
int egress_shaper(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct shaper_config cfg;
	__u32 l4_off = 0, cls, len;
	__u16 port = 0;
	__u8 dscp, proto;

	if ((void *)(eth + 1) > data_end)
		goto non_ip;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto non_ip;
		dscp = ip->tos >> 2;
		proto = ip->protocol;
		/* later fragments carry no ports */
		if (!(ip->frag_off & bpf_htons(IP_OFFSET)) && ip->ihl >= 5)
			l4_off = sizeof(*eth) + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto non_ip;
		dscp = ip6->priority << 2 | ip6->flow_lbl[0] >> 6;
		proto = ip6->nexthdr;
		l4_off = sizeof(*eth) + sizeof(*ip6);
	} else {
		goto non_ip;
	}

	if (l4_off && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
		__be16 *ports = data + l4_off;	/* source, dest */

		if ((void *)(ports + 2) <= data_end)
			port = bpf_ntohs(ports[1]);
	}

	cfg = shaper;
	len = skb->len;
	cls = class_of_dscp(dscp);
	if (cls == BestEffort)
		cls = class_of_port(port, cfg.backup_port);
	if (cls == BestEffort && len >= cfg.bulk_min_len)
		cls = Bulk;
	if (cls == Realtime && len > cfg.rt_max_len) {
		__sync_fetch_and_add(&demoted, 1);
		cls = BestEffort;
	}
	if (cls == Scavenger && cfg.drop_scavenger) {
		book(cls, len, 1);
		return TC_ACT_SHOT;
	}

	skb->priority = class_priority(cls);
	skb->mark = cfg.mark_base + cls;
	book(cls, len, 0);
	return TC_ACT_OK;

non_ip:
	__sync_fetch_and_add(&non_ip, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
