// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind10_tc_igmp_stats.ks: counts IGMP messages per
 * type and Router Alert frames, joins and leaves per group (v1/v2 reports, leaves, and up to a
 * configured number (at most 8) of IGMPv3 group records, whose types are counted too), and
 * drops queries from queriers that are not allowed and IGMP cut short. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define IPOPT_RA 0x94

#define IGMP_QUERY 0x11
#define IGMP_V1_REPORT 0x12
#define IGMP_V2_REPORT 0x16
#define IGMP_LEAVE 0x17
#define IGMP_V3_REPORT 0x22

enum {
	SLOT_QUERY = 0,
	SLOT_V1_REPORT = 1,
	SLOT_V2_REPORT = 2,
	SLOT_LEAVE = 3,
	SLOT_V3_REPORT = 4,
	SLOT_OTHER = 5,
};

/* IGMPv3 group record types (RFC 3376 4.2.12) */
#define MODE_IS_INCLUDE 1
#define MODE_IS_EXCLUDE 2
#define CHANGE_TO_INCLUDE 3
#define CHANGE_TO_EXCLUDE 4
#define ALLOW_NEW_SOURCES 5
#define BLOCK_OLD_SOURCES 6

#define MAX_RECORDS 8

/* config igmp_policy { max_records: u32, enforce_queriers: bool } */
struct igmp_policy_config {
	__u32 max_records;
	bool enforce_queriers;
};

struct igmp_policy_config igmp_policy SEC(".data.igmp_policy") = {
	.max_records = 8,
	.enforce_queriers = true,
};

/* SLOT_* -> messages */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} igmp_types SEC(".maps");

/* v3 record type -> records (unknown types at 0) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} record_types SEC(".maps");

/* group (host order) -> joins */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} group_joins SEC(".maps");

/* group (host order) -> leaves */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} group_leaves SEC(".maps");

/* querier source address (host order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} allowed_queriers SEC(".maps");

/* .bss, in declaration order */
__u64 igmp_messages = 0;
__u64 router_alert_frames = 0;
__u64 general_queries = 0;
__u64 rogue_queries = 0;
__u64 truncated = 0;

/* m[group] += 1 on a hash map, inserting the entry when missing */
static __always_inline void count_group(void *map, __u32 group)
{
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(map, &group);
	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	if (bpf_map_update_elem(map, &group, &one, BPF_NOEXIST)) {
		val = bpf_map_lookup_elem(map, &group);
		if (val)
			__sync_fetch_and_add(val, 1);
	}
}

static __always_inline void count_slot(void *map, __u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(map, &slot);

	if (val)
		__sync_fetch_and_add(val, 1);
}

static __always_inline __u32 type_slot(__u8 type)
{
	switch (type) {
	case IGMP_QUERY:
		return SLOT_QUERY;
	case IGMP_V1_REPORT:
		return SLOT_V1_REPORT;
	case IGMP_V2_REPORT:
		return SLOT_V2_REPORT;
	case IGMP_LEAVE:
		return SLOT_LEAVE;
	case IGMP_V3_REPORT:
		return SLOT_V3_REPORT;
	default:
		return SLOT_OTHER;
	}
}

SEC("tcx/ingress")
int igmp_stats(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct igmphdr *ig;
	struct igmpv3_report *rep;
	__u32 group, limit, ig_off, off, i;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_IGMP)
		return TC_ACT_OK;
	if (ip->ihl < 5)
		return TC_ACT_OK;

	ig_off = sizeof(*eth) + ip->ihl * 4;
	ig = data + ig_off;
	if ((void *)(ig + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&igmp_messages, 1);
	if (ip->ihl > 5) {
		/* within the header the test above covered; the verifier needs its own test */
		__u8 *opt = (void *)(ip + 1);

		if ((void *)(opt + 2) <= data_end && opt[0] == IPOPT_RA && opt[1] == 4)
			__sync_fetch_and_add(&router_alert_frames, 1);
	}

	count_slot(&igmp_types, type_slot(ig->type));
	group = bpf_ntohl(ig->group);

	switch (ig->type) {
	case IGMP_QUERY: {
		__u32 querier = bpf_ntohl(ip->saddr);

		if (igmp_policy.enforce_queriers &&
		    !bpf_map_lookup_elem(&allowed_queriers, &querier)) {
			__sync_fetch_and_add(&rogue_queries, 1);
			return TC_ACT_SHOT;
		}
		if (group == 0)
			__sync_fetch_and_add(&general_queries, 1);
		return TC_ACT_OK;
	}
	case IGMP_V1_REPORT:
	case IGMP_V2_REPORT:
		count_group(&group_joins, group);
		return TC_ACT_OK;
	case IGMP_LEAVE:
		count_group(&group_leaves, group);
		return TC_ACT_OK;
	case IGMP_V3_REPORT:
		break;
	default:
		return TC_ACT_OK;
	}

	/* v3 report: the 8 bytes the igmphdr test covered hold the record count */
	rep = (void *)ig;
	limit = bpf_ntohs(rep->ngrec);
	if (limit > igmp_policy.max_records)
		limit = igmp_policy.max_records;
	if (limit > MAX_RECORDS)
		limit = MAX_RECORDS;

	off = ig_off + sizeof(*rep);
	for (i = 0; i < limit; i++) {
		struct igmpv3_grec *rec;
		__u16 nsrcs;
		__u8 rtype;
		__u32 rgroup;

		/* no packet reaches past 64 KiB; keeps the offset one the verifier can follow */
		if (off > 0xffff - sizeof(*rec)) {
			__sync_fetch_and_add(&truncated, 1);
			break;
		}
		rec = data + off;
		if ((void *)(rec + 1) > data_end) {
			__sync_fetch_and_add(&truncated, 1);
			break;
		}
		rtype = rec->grec_type;
		nsrcs = bpf_ntohs(rec->grec_nsrcs);
		rgroup = bpf_ntohl(rec->grec_mca);

		count_slot(&record_types, rtype >= MODE_IS_INCLUDE && rtype <= BLOCK_OLD_SOURCES ? rtype : 0);
		if (rtype == MODE_IS_EXCLUDE || rtype == CHANGE_TO_EXCLUDE ||
		    (rtype == ALLOW_NEW_SOURCES && nsrcs > 0))
			count_group(&group_joins, rgroup);
		else if (rtype == CHANGE_TO_INCLUDE && nsrcs == 0)
			count_group(&group_leaves, rgroup);

		off += sizeof(*rec) + ((__u32)nsrcs + rec->grec_auxwords) * 4;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
