// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_xdp_dns_guard.ks: DNS response guard in XDP.
 * UDP from port 53 with QR set is parsed: header, first question name (at most 8 labels of at
 * most 63 bytes), question type. Responses are counted per qtype (hash), each destination's
 * packets/bytes/last time kept in an LRU hash, and responses to a destination over its budget
 * are dropped with a ring-buffer event. Unparsable questions are dropped, counted by reason.
 * The .ks throw/catch becomes skip_name() returning -reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53
#define DNS_QR 0x8000
#define DNS_RCODE 0x000F
#define RCODE_NXDOMAIN 3
#define MAX_LABELS 8
#define MAX_LABEL_LEN 63

enum BadResponse { Truncated = 1, BadLabel = 2, TooManyLabels = 3 };

struct DnsHdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct DestUsage {
	__u64 packets;
	__u64 bytes;
	__u64 last_ns;
};

/* address as on the wire; 16 bytes, no padding */
struct DropEvent {
	__be32 daddr;
	__u16 qtype;
	__u16 dns_id;
	__u64 packets;
};

/* config guard { packet_budget: u32 = 1000, enforce: bool = true } */
struct guard_config {
	__u32 packet_budget;
	bool enforce;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} qtype_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __be32);
	__type(value, struct DestUsage);
} dest_usage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} drop_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} bad_responses SEC(".maps");

struct guard_config guard SEC(".data.guard") = {
	.packet_budget = 1000,
	.enforce = true,
};

__u64 responses = 0;
__u64 not_responses = 0;
__u64 no_question = 0;
__u64 nxdomain = 0;
__u64 answers = 0;
__u64 over_budget = 0;
__u64 events_lost = 0;

static __always_inline int bad(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&bad_responses, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_DROP;
}

/* m[k] += 1 on a hash map: add to the entry, or create it */
static __always_inline void count_qtype(__u16 qtype)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&qtype_counts, &qtype);

	if (!v) {
		if (!bpf_map_update_elem(&qtype_counts, &qtype, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&qtype_counts, &qtype);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

/* Offset just past the question name that starts at `pos`, or -reason. */
static __always_inline long skip_name(void *data, void *data_end, __u32 pos)
{
	__u8 *p;
	int i;

	for (i = 0; i < MAX_LABELS; i++) {
		__u8 len;

		p = data + pos;
		if ((void *)(p + 1) > data_end)
			return -Truncated;
		len = *p;
		if (len == 0)
			return pos + 1;
		/* compression pointers and the reserved forms do not belong in a question */
		if (len > MAX_LABEL_LEN)
			return -BadLabel;
		pos += len + 1;
	}
	/* eight labels: only the root label may follow */
	p = data + pos;
	if ((void *)(p + 1) > data_end)
		return -Truncated;
	if (*p != 0)
		return -TooManyLabels;
	return pos + 1;
}

SEC("xdp")
int dns_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct DestUsage *u;
	struct udphdr *udp;
	struct DnsHdr *dns;
	__u32 ihl;
	__u16 flags, qtype;
	__be32 daddr;
	__u64 len, now;
	__u8 *q;
	long end;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->source != bpf_htons(DNS_PORT))
		return XDP_PASS;

	dns = (void *)(udp + 1);
	if ((void *)(dns + 1) > data_end)
		return bad(Truncated);
	flags = bpf_ntohs(dns->flags);
	if (!(flags & DNS_QR)) {
		__sync_fetch_and_add(&not_responses, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&responses, 1);
	if ((flags & DNS_RCODE) == RCODE_NXDOMAIN)
		__sync_fetch_and_add(&nxdomain, 1);
	__sync_fetch_and_add(&answers, bpf_ntohs(dns->ancount));
	if (dns->qdcount == 0) {
		__sync_fetch_and_add(&no_question, 1);
		return XDP_PASS;
	}

	end = skip_name(data, data_end,
			sizeof(*eth) + ihl + sizeof(*udp) + sizeof(*dns));
	if (end < 0)
		return bad(-end);
	q = data + end;
	if ((void *)(q + 4) > data_end)
		return bad(Truncated);
	qtype = (q[0] << 8) | q[1];
	count_qtype(qtype);

	daddr = ip->daddr;
	len = data_end - data;
	now = bpf_ktime_get_ns();
	u = bpf_map_lookup_elem(&dest_usage, &daddr);
	if (!u) {
		struct DestUsage fresh = { .packets = 1, .bytes = len, .last_ns = now };

		bpf_map_update_elem(&dest_usage, &daddr, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	u->packets += 1;
	u->bytes += len;
	u->last_ns = now;
	if (u->packets > guard.packet_budget && guard.enforce) {
		struct DropEvent *e;

		__sync_fetch_and_add(&over_budget, 1);
		e = bpf_ringbuf_reserve(&drop_events, sizeof(*e), 0);
		if (e) {
			e->daddr = daddr;
			e->qtype = qtype;
			e->dns_id = bpf_ntohs(dns->id);
			e->packets = u->packets;
			bpf_ringbuf_submit(e, 0);
		} else {
			__sync_fetch_and_add(&events_lost, 1);
		}
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
