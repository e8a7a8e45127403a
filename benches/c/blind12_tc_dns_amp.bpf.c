// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_tc_dns_amp.ks: DNS amplification guard on tc ingress.
 * IPv4/UDP datagrams from the DNS port are parsed as responses (header, question name, QTYPE),
 * classified by ANY and by UDP length above large_bytes, and counted per class in a per-CPU
 * array. ANY/large responses from untrusted sources are counted per source in an LRU hash;
 * past max_suspicious responses or max_bytes bytes they are dropped (when enforcing). Queries,
 * later fragments, cut and malformed responses are counted per event. The .ks throwing readers
 * become a parser returning the fault; the deferred reached(stage) runs once after it, with
 * the stage the parser got to. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define DNS_HDR_LEN 12
#define MAX_LABELS 16
#define QTYPE_ANY 255
#define DNS_QR 0x8000
#define IP_OFFSET 0x1fff

#define E_CUT 1
#define E_BAD_HEADER 2
#define E_BAD_NAME 3

enum {
	EV_NOT_DNS = 0,
	EV_LATER_FRAGMENT = 1,
	EV_QUERY = 2,
	EV_PLAIN = 3,
	EV_TRUSTED = 4,
	EV_SUSPICIOUS = 5,
	EV_DROPPED = 6,
	EV_CUT = 7,
	EV_BAD_HEADER = 8,
	EV_BAD_NAME = 9,
};

enum { AT_HEADER = 0, AT_QUESTION = 1, AT_TYPE = 2, CLASSIFIED = 3 };

struct amp_config {
	__u16 dns_port;
	__u16 large_bytes;
	__u32 max_suspicious;
	__u32 max_bytes;
	bool enforce;
};

struct amp_config amp SEC(".data.amp") = {
	.dns_port = 53,
	.large_bytes = 512,
	.max_suspicious = 8,
	.max_bytes = 65536,
	.enforce = true,
};

struct Reflector {
	__u64 responses;
	__u64 bytes;
	__u32 any;
	__u32 large;
	__u32 dropped;
};

struct KindStats {
	__u64 responses;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct Reflector);
} reflectors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} trusted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct KindStats);
} kind_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __u64);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} depth SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline int malformed_verdict(void)
{
	return amp.enforce ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Everything after the port test; *stage tells how far the parser got. */
static __always_inline int inspect(void *data, void *data_end, struct iphdr *ip,
				   struct udphdr *udp, __u32 l4, __u32 *stage)
{
	__u32 dns = l4 + sizeof(*udp), pos, size, bits, src, i;
	struct Reflector *r, fresh_r;
	struct KindStats *ks;
	bool fresh = false;
	__u16 qtype;
	__u8 *p;
	int err, verdict;

	p = data + dns;
	if ((void *)(p + 4) > data_end) {
		err = E_CUT;
		goto fail;
	}
	if (!(bpf_ntohs(*(__u16 *)(p + 2)) & DNS_QR)) {
		bump(&events, EV_QUERY);
		return TC_ACT_OK;
	}
	if ((void *)(p + 6) > data_end) {
		err = E_CUT;
		goto fail;
	}
	if (*(__u16 *)(p + 4) != bpf_htons(1)) {
		err = E_BAD_HEADER;
		goto fail;
	}

	*stage = AT_QUESTION;
	pos = dns + DNS_HDR_LEN;
	for (i = 0; i < MAX_LABELS; i++) {
		__u8 *l = data + pos;
		__u32 len;

		if ((void *)(l + 1) > data_end) {
			err = E_CUT;
			goto fail;
		}
		len = *l;
		if (len == 0)
			break;
		if (len > 63) {
			err = E_BAD_NAME;
			goto fail;
		}
		pos += len + 1;
	}
	if (i == MAX_LABELS) {
		err = E_BAD_NAME;
		goto fail;
	}
	pos += 1;

	*stage = AT_TYPE;
	p = data + pos;
	if ((void *)(p + 2) > data_end) {
		err = E_CUT;
		goto fail;
	}
	qtype = bpf_ntohs(*(__u16 *)p);
	*stage = CLASSIFIED;

	size = bpf_ntohs(udp->len);
	bits = (qtype == QTYPE_ANY) | ((size > amp.large_bytes) << 1);
	ks = bpf_map_lookup_elem(&kind_stats, &bits);
	if (ks) {
		/* per-CPU slot: plain updates */
		ks->responses += 1;
		ks->bytes += size;
	}
	if (bits == 0) {
		bump(&events, EV_PLAIN);
		return TC_ACT_OK;
	}
	src = ip->saddr;
	if (bpf_map_lookup_elem(&trusted, &src)) {
		bump(&events, EV_TRUSTED);
		return TC_ACT_OK;
	}

	r = bpf_map_lookup_elem(&reflectors, &src);
	if (!r) {
		__builtin_memset(&fresh_r, 0, sizeof(fresh_r));
		r = &fresh_r;
		fresh = true;
	}
	r->responses += 1;
	r->bytes += size;
	if (bits & 1)
		r->any += 1;
	if (bits & 2)
		r->large += 1;
	if (amp.enforce && (r->responses > amp.max_suspicious || r->bytes > amp.max_bytes)) {
		r->dropped += 1;
		bump(&events, EV_DROPPED);
		verdict = TC_ACT_SHOT;
	} else {
		bump(&events, EV_SUSPICIOUS);
		verdict = TC_ACT_OK;
	}
	if (fresh)
		bpf_map_update_elem(&reflectors, &src, &fresh_r, BPF_ANY);
	return verdict;

fail:
	if (err == E_CUT) {
		bump(&events, EV_CUT);
		return TC_ACT_OK;
	}
	bump(&events, err == E_BAD_HEADER ? EV_BAD_HEADER : EV_BAD_NAME);
	return malformed_verdict();
}

SEC("tcx/ingress")
int dns_amp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;
	__u32 l4, stage;
	int verdict;

	if ((void *)(ip + 1) > data_end)
		goto not_dns;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
		goto not_dns;
	if (ip->frag_off & bpf_htons(IP_OFFSET)) {
		bump(&events, EV_LATER_FRAGMENT);
		return TC_ACT_OK;
	}
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		goto not_dns;
	if (udp->source != bpf_htons(amp.dns_port))
		goto not_dns;

	stage = AT_HEADER;
	verdict = inspect(data, data_end, ip, udp, l4, &stage);
	/* the .ks defers reached(stage) to every exit from here on */
	bump(&depth, stage);
	return verdict;

not_dns:
	bump(&events, EV_NOT_DNS);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
