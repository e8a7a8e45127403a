// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_xdp_dns_resp_match.ks: DNS responses (IPv4, UDP from port
 * 53) validated against outstanding queries. The header must be complete, QR set, opcode 0,
 * QDCOUNT 1, ANCOUNT <= max_answers; the question name is walked (<= 16 labels of <= 63 bytes,
 * no compression) and QTYPE/QCLASS read. The response must match an outstanding query
 * {client, server, client port, id} in an LRU hash with the same question, not answered yet;
 * the first answer records its RCODE and TC bit, a later one only counts answers. Accepted
 * responses are counted per RCODE class in a per-CPU array {responses, answers}, mismatches
 * per reason in a hash (insert-or-add) and dropped unless the matching drop_* is off. The .ks
 * throwing helpers become functions returning the reason and a jump to one block. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define MAX_LABELS 16
#define MAX_LABEL_LEN 63
#define QR_RESPONSE 0x8000
#define TC_BIT 0x0200

enum {
	M_TRUNCATED = 1,
	M_NOT_RESPONSE = 2,
	M_BAD_OPCODE = 3,
	M_BAD_QDCOUNT = 4,
	M_TOO_MANY_ANSWERS = 5,
	M_BAD_NAME = 6,
	M_UNSOLICITED = 7,
	M_DUPLICATE = 8,
	M_QUESTION_MISMATCH = 9,
};

enum {
	RC_NOERROR = 0,
	RC_SERVFAIL = 1,
	RC_NXDOMAIN = 2,
	RC_REFUSED = 3,
	RC_OTHER = 4,
};

struct dns_match_config {
	__u16 max_answers;
	bool drop_malformed;
	bool drop_unsolicited;
};

struct dns_match_config dns_match SEC(".data.dns_match") = {
	.max_answers = 32,
	.drop_malformed = true,
	.drop_unsolicited = true,
};

struct DnsHdr {
	__u16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct DnsQuestion {
	__be16 qtype;
	__be16 qclass;
};

struct QueryKey {
	__u32 client;
	__u32 server;
	__u16 client_port;
	__u16 id;
};

struct PendingQuery {
	__u16 qtype;
	__u16 qclass;
	__u16 answers;
	__u8 last_rcode;
	bool truncated;
};

struct RcodeStats {
	__u64 responses;
	__u64 answers;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct QueryKey);
	__type(value, struct PendingQuery);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} mismatches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, struct RcodeStats);
} rcode_stats SEC(".maps");

__u64 not_dns = 0;

struct dns_meta {
	__u16 id;
	__u16 ancount;
	__u8 rcode;
	bool truncated;
};

static __always_inline int parse_header(void *data, void *data_end, __u32 off,
					struct dns_meta *m)
{
	struct DnsHdr *h = data + off;
	__u16 flags, ancount;

	if ((void *)(h + 1) > data_end)
		return M_TRUNCATED;
	flags = bpf_ntohs(h->flags);
	if (!(flags & QR_RESPONSE))
		return M_NOT_RESPONSE;
	if ((flags >> 11) & 0xf)
		return M_BAD_OPCODE;
	if (h->qdcount != bpf_htons(1))
		return M_BAD_QDCOUNT;
	ancount = bpf_ntohs(h->ancount);
	if (ancount > dns_match.max_answers)
		return M_TOO_MANY_ANSWERS;
	m->id = h->id;
	m->ancount = ancount;
	m->rcode = flags & 0xf;
	m->truncated = (flags & TC_BIT) != 0;
	return 0;
}

/* 0 with *end just past the question name, or M_BAD_NAME */
static __always_inline int skip_name(void *data, void *data_end, __u32 off, __u32 *end)
{
	__u32 pos = off, len, i;

	for (i = 0; i < MAX_LABELS; i++) {
		__u8 *p = data + pos;

		if ((void *)(p + 1) > data_end)
			return M_BAD_NAME;
		len = *p;
		if (len == 0) {
			*end = pos + 1;
			return 0;
		}
		if (len > MAX_LABEL_LEN)
			return M_BAD_NAME;
		pos += len + 1;
	}
	return M_BAD_NAME;
}

static __always_inline __u32 rcode_class(__u8 rcode)
{
	switch (rcode) {
	case 0:
		return RC_NOERROR;
	case 2:
		return RC_SERVFAIL;
	case 3:
		return RC_NXDOMAIN;
	case 5:
		return RC_REFUSED;
	default:
		return RC_OTHER;
	}
}

static __always_inline void count_mismatch(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&mismatches, &reason), one = 1;

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&mismatches, &reason, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&mismatches, &reason);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int dns_resp_match(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct DnsQuestion *question;
	struct PendingQuery *q;
	struct RcodeStats *st;
	struct dns_meta meta;
	struct udphdr *udp;
	struct QueryKey key;
	__u32 l4, qend, reason, cls;
	__u16 qtype, qclass;
	bool malformed;

	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&not_dns, 1);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl < 5 ||
	    (ip->frag_off & bpf_htons(0x1fff))) {
		__sync_fetch_and_add(&not_dns, 1);
		return XDP_PASS;
	}
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&not_dns, 1);
		return XDP_PASS;
	}
	if (udp->source != bpf_htons(DNS_PORT)) {
		__sync_fetch_and_add(&not_dns, 1);
		return XDP_PASS;
	}

	reason = parse_header(data, data_end, l4 + 8, &meta);
	if (reason)
		goto reject;
	reason = skip_name(data, data_end, l4 + 8 + DNS_HDR_LEN, &qend);
	if (reason)
		goto reject;
	question = data + qend;
	if ((void *)(question + 1) > data_end) {
		reason = M_TRUNCATED;
		goto reject;
	}
	qtype = bpf_ntohs(question->qtype);
	qclass = bpf_ntohs(question->qclass);

	key.client = ip->daddr;
	key.server = ip->saddr;
	key.client_port = udp->dest;
	key.id = meta.id;
	q = bpf_map_lookup_elem(&pending, &key);
	if (!q) {
		reason = M_UNSOLICITED;
		goto reject;
	}
	if (q->answers != 0) {
		q->answers += 1;
		reason = M_DUPLICATE;
		goto reject;
	}
	if (q->qtype != qtype || q->qclass != qclass) {
		reason = M_QUESTION_MISMATCH;
		goto reject;
	}
	q->answers = 1;
	q->last_rcode = meta.rcode;
	q->truncated = meta.truncated;

	cls = rcode_class(meta.rcode);
	st = bpf_map_lookup_elem(&rcode_stats, &cls);
	if (st) {
		st->responses += 1;
		st->answers += meta.ancount;
	}
	return XDP_PASS;

reject:
	count_mismatch(reason);
	malformed = reason < M_UNSOLICITED;
	if (malformed ? dns_match.drop_malformed : dns_match.drop_unsolicited)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
