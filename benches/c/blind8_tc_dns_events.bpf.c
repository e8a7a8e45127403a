// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_tc_dns_events.ks: tc ingress DNS query events. IPv4 UDP
 * datagrams to port 53 are read with bpf_skb_load_bytes; standard queries with one question
 * have their name walked (at most 32 labels of at most 63 bytes) and are counted per qtype
 * (hash, insert-or-add) and reported on a ring buffer {saddr, daddr, sport, id, qtype,
 * name_len, action}. ANY queries are dropped when dns.block_any is set, names longer than
 * dns.max_name bytes are dropped, malformed queries are dropped. The deferred to_port_53 count
 * of the .ks runs on every exit after the port test, so it is done right there.
 * .bss: to_port_53@0, malformed@8, blocked_any@16, long_names@24, events_lost@32. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define DNS_PORT 53
#define MAX_LABELS 32
#define QTYPE_ANY 255
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

enum { ACT_PASS = 0, ACT_BLOCK_ANY = 1, ACT_LONG_NAME = 2 };

struct dns_config {
	bool block_any;
	__u32 max_name;
};

struct DnsHdr {
	__u16 id;
	__u16 flags;
	__u16 qdcount;
	__u16 ancount;
	__u16 nscount;
	__u16 arcount;
};

struct Question {
	__u16 qtype;
	__u16 qclass;
};

struct QueryEvent {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 id;
	__u16 qtype;
	__u8 name_len;
	__u8 action;
};

struct dns_config dns SEC(".data.dns") = {
	.block_any = true,
	.max_name = 200,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} qtype_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} dns_events SEC(".maps");

__u64 to_port_53 = 0;
__u64 malformed = 0;
__u64 blocked_any = 0;
__u64 long_names = 0;
__u64 events_lost = 0;

static __always_inline void count_qtype(__u16 qtype)
{
	__u64 *cnt = bpf_map_lookup_elem(&qtype_counts, &qtype);
	__u64 one = 1;

	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&qtype_counts, &qtype, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&qtype_counts, &qtype);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
}

SEC("tcx/ingress")
int dns_events_ingress(struct __sk_buff *skb)
{
	struct QueryEvent *ev;
	struct DnsHdr hdr;
	struct Question q;
	struct udphdr udp;
	struct iphdr ip;
	__u32 ihl, off, name_len = 0, i;
	__u16 qtype;
	__u8 action;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
		return TC_ACT_OK;
	if (ip.version != 4 || ip.protocol != IPPROTO_UDP || (ip.frag_off & bpf_htons(0x1fff)))
		return TC_ACT_OK;
	ihl = ip.ihl * 4;
	if (ihl < sizeof(ip))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl, &udp, sizeof(udp)))
		return TC_ACT_OK;
	if (udp.dest != bpf_htons(DNS_PORT))
		return TC_ACT_OK;
	__sync_fetch_and_add(&to_port_53, 1);

	off = ETH_HLEN + ihl + sizeof(udp);
	if (bpf_skb_load_bytes(skb, off, &hdr, sizeof(hdr)))
		goto bad;
	if (bpf_ntohs(hdr.flags) & 0xf800)
		return TC_ACT_OK;	/* a response (QR), or an opcode other than QUERY */
	if (hdr.qdcount != bpf_htons(1))
		goto bad;

	off += sizeof(hdr);
	for (i = 0; i < MAX_LABELS; i++) {
		__u8 len;

		if (bpf_skb_load_bytes(skb, off, &len, 1))
			goto bad;
		if (len == 0)
			break;
		if (len > 63)
			goto bad;
		off += 1 + len;
		name_len += 1 + len;
	}
	if (i == MAX_LABELS)
		goto bad;
	if (bpf_skb_load_bytes(skb, off + 1, &q, sizeof(q)))
		goto bad;

	qtype = bpf_ntohs(q.qtype);
	count_qtype(qtype);

	action = ACT_PASS;
	if (qtype == QTYPE_ANY && dns.block_any)
		action = ACT_BLOCK_ANY;
	else if (name_len > dns.max_name)
		action = ACT_LONG_NAME;

	ev = bpf_ringbuf_reserve(&dns_events, sizeof(*ev), 0);
	if (ev) {
		ev->saddr = ip.saddr;
		ev->daddr = ip.daddr;
		ev->sport = bpf_ntohs(udp.source);
		ev->id = bpf_ntohs(hdr.id);
		ev->qtype = qtype;
		ev->name_len = name_len;
		ev->action = action;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&events_lost, 1);
	}

	if (action == ACT_BLOCK_ANY) {
		__sync_fetch_and_add(&blocked_any, 1);
		return TC_ACT_SHOT;
	}
	if (action == ACT_LONG_NAME) {
		__sync_fetch_and_add(&long_names, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;

bad:
	__sync_fetch_and_add(&malformed, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
