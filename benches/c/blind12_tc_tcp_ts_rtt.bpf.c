// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_tc_tcp_ts_rtt.ks: TCP timestamp samples for passive RTT
 * measurement on tc ingress. For IPv4 TCP from or to the configured port (0: any), the options
 * are copied out with bpf_skb_load_bytes and walked (EOL stops, NOP is one byte, others carry
 * their length), counted per kind; the timestamp option (kind 8, length 10) gives TSval and
 * TSecr. A flow (4-tuple as on the wire) is sampled once per TSval: a repeated TSval is only
 * counted, a new one is stored in `flows` and sent on the ring buffer with the time. Malformed
 * option lists are counted and, if configured, dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IP_OFFSET 0x1fff
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_TIMESTAMP 8
#define TCPOLEN_TIMESTAMP 10
#define MAX_OPT_LEN 40

enum { ST_SAMPLED, ST_REPEATED, ST_NO_OPTIONS, ST_NO_TIMESTAMP, ST_MALFORMED, ST_TRUNCATED, ST_MAX };

struct rtt_config {
	__u16 port;
	bool drop_malformed;
};

struct FlowKey {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

struct FlowTs {
	__u32 last_tsval;
	__u32 last_tsecr;
	__u32 samples;
	__u32 repeats;
};

struct TsEvent {
	__u64 ts_ns;
	__be32 saddr;
	__be32 daddr;
	__u32 tsval;
	__u32 tsecr;
	__be16 sport;
	__be16 dport;
	__u8 flags;
	__u8 to_port;
	__u8 options;
	__u8 opt_len;
};

struct rtt_config rtt SEC(".data.rtt") = {
	.port = 443,
	.drop_malformed = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct FlowKey);
	__type(value, struct FlowTs);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} option_kinds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 262144);
} ts_events SEC(".maps");

__u64 events_lost = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int malformed(void)
{
	count(&stats, ST_MALFORMED);
	return rtt.drop_malformed ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline __u32 be32_at(const __u8 *b, __u32 i)
{
	return (__u32)b[i & 63] << 24 | (__u32)b[(i + 1) & 63] << 16 |
	       (__u32)b[(i + 2) & 63] << 8 | b[(i + 3) & 63];
}

SEC("tcx/ingress")
int tcp_ts_sampler(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 hlen, doff, n, i = 0, step, cnt = 0, tsval = 0, tsecr = 0;
	bool found = false, to_port;
	struct FlowKey key;
	struct FlowTs *f;
	struct TsEvent *ev;
	struct tcphdr *tcp;
	__u8 opts[64];	/* n <= 40 bytes are used; 64 so that indices can be masked */
	__u8 flags;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_OK;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return TC_ACT_OK;
	tcp = (void *)ip + hlen;
	if ((void *)(tcp + 1) > data_end) {
		count(&stats, ST_TRUNCATED);
		return TC_ACT_OK;
	}
	to_port = bpf_ntohs(tcp->dest) == rtt.port;
	if (rtt.port && !to_port && bpf_ntohs(tcp->source) != rtt.port)
		return TC_ACT_OK;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	flags = ((__u8 *)tcp)[13];
	doff = tcp->doff * 4;
	if (doff < sizeof(*tcp))
		return malformed();
	n = doff - sizeof(*tcp);
	if (n == 0) {
		count(&stats, ST_NO_OPTIONS);
		return TC_ACT_OK;
	}
	if (bpf_skb_load_bytes(skb, sizeof(*eth) + hlen + sizeof(*tcp), opts, n)) {
		count(&stats, ST_TRUNCATED);
		return TC_ACT_OK;
	}

	/* every round moves i on by a byte at least, and n <= 40 */
	for (step = 0; step < MAX_OPT_LEN && i < n; step++) {
		__u8 kind = opts[i & 63];
		__u32 len;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 2 > n)
			return malformed();
		len = opts[(i + 1) & 63];
		if (len < 2 || i + len > n)
			return malformed();
		count(&option_kinds, kind);
		cnt++;
		if (kind == TCPOPT_TIMESTAMP) {
			if (len != TCPOLEN_TIMESTAMP)
				return malformed();
			tsval = be32_at(opts, i + 2);
			tsecr = be32_at(opts, i + 6);
			found = true;
		}
		i += len;
	}
	if (!found) {
		count(&stats, ST_NO_TIMESTAMP);
		return TC_ACT_OK;
	}

	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		if (f->last_tsval == tsval) {
			f->repeats += 1;
			count(&stats, ST_REPEATED);
			return TC_ACT_OK;
		}
		f->last_tsval = tsval;
		f->last_tsecr = tsecr;
		f->samples += 1;
	} else {
		struct FlowTs nf = { .last_tsval = tsval, .last_tsecr = tsecr, .samples = 1, .repeats = 0 };

		bpf_map_update_elem(&flows, &key, &nf, BPF_ANY);
	}
	count(&stats, ST_SAMPLED);

	ev = bpf_ringbuf_reserve(&ts_events, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&events_lost, 1);
		return TC_ACT_OK;
	}
	ev->ts_ns = bpf_ktime_get_ns();
	ev->saddr = key.saddr;
	ev->daddr = key.daddr;
	ev->tsval = tsval;
	ev->tsecr = tsecr;
	ev->sport = key.sport;
	ev->dport = key.dport;
	ev->flags = flags;
	ev->to_port = to_port;
	ev->options = cnt;
	ev->opt_len = n;
	bpf_ringbuf_submit(ev, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
