// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of examples/dns_guard.ks: UDP datagrams to port 53 must be
 * well-formed DNS queries; rejections are counted per reason, reported through a
 * ring buffer and dropped when guard.enforce is set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define DNS_PORT 53

/* enum Reason in the .ks source; the .ks program throws these codes */
enum reason {
	REASON_ACCEPTED = 0,
	REASON_TRUNCATED = 1,
	REASON_NOT_QUERY = 2,
	REASON_BAD_OPCODE = 3,
	REASON_BAD_COUNT = 4,
	REASON_MAX,
};

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

/* ring-buffer record */
struct Rejection {
	__u32 saddr;	/* network byte order */
	__u32 reason;
};

/* config guard { enforce: bool = true } */
struct guard_config {
	bool enforce;
};

struct guard_config guard SEC(".data.guard") = {
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, REASON_MAX);
	__type(key, __u32);
	__type(value, __u64);
} reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} rejections SEC(".maps");

/* DNS datagrams inspected (.bss, shared with userspace) */
__u64 inspected = 0;

/* Why a DNS header is not an acceptable query, or REASON_ACCEPTED. */
static __always_inline enum reason check_query(__u16 flags, __u16 qdcount)
{
	if (flags & 0x8000)	/* QR set: a response, not a query */
		return REASON_NOT_QUERY;
	/* opcodes 0 (QUERY), 4 (NOTIFY) and 5 (UPDATE) are what a resolver expects */
	switch ((flags >> 11) & 0xF) {
	case 0:
	case 4:
	case 5:
		break;
	default:
		return REASON_BAD_OPCODE;
	}
	if (qdcount != 1)
		return REASON_BAD_COUNT;
	return REASON_ACCEPTED;
}

SEC("xdp")
int dns_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct dnshdr *dns = (void *)(udp + 1);
	struct Rejection *r;
	__u32 reason;
	__u64 *cnt;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (udp->dest != bpf_htons(DNS_PORT))
		return XDP_PASS;

	__sync_fetch_and_add(&inspected, 1);

	if ((void *)(dns + 1) > data_end)
		reason = REASON_TRUNCATED;
	else
		reason = check_query(bpf_ntohs(dns->flags), bpf_ntohs(dns->qdcount));

	cnt = bpf_map_lookup_elem(&reasons, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (reason == REASON_ACCEPTED)
		return XDP_PASS;

	r = bpf_ringbuf_reserve(&rejections, sizeof(*r), 0);
	if (r) {
		r->saddr = ip->saddr;
		r->reason = reason;
		bpf_ringbuf_submit(r, 0);
	}

	return guard.enforce ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
