// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind10_tc_http_host.ks: tc ingress filter of HTTP requests by Host
 * header. For IPv4 TCP to the configured port, up to 64 payload bytes (within tot_len and the
 * frame) are copied with bpf_skb_load_bytes; a request (GET/POST/HEAD/PUT) is searched for a
 * "\nHost: " line (name in any case), the host is hashed with FNV-1a over its lower-cased bytes
 * up to '\r' or the end of the copy, counted per hash, matched against blocked_hosts (drop
 * unless log-only or not enforcing) and reported on a ring buffer. Methods are counted. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IP_OFFSET 0x1fff
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define SNAP_LEN 64
#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u

enum { M_GET, M_POST, M_HEAD, M_PUT, M_OTHER, M_MAX };

struct http_config {
	__u16 port;
	bool enforce;
};

struct BlockRule {
	__u64 matches;
	bool log_only;
};

struct HostEvent {
	__u32 saddr;
	__u32 hash;
	__u16 host_len;
	__u8 verdict;
};

struct http_config http SEC(".data.http") = {
	.port = 80,
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct BlockRule);
} blocked_hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} host_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, M_MAX);
	__type(key, __u32);
	__type(value, __u64);
} method_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} host_events SEC(".maps");

/* .bss, in this order: requests_without_host@0, events_lost@8 */
__u64 requests_without_host = 0;
__u64 events_lost = 0;

static __always_inline __u8 lower(char c)
{
	__u8 b = c;

	return (b >= 'A' && b <= 'Z') ? b | 0x20 : b;
}

static __always_inline __u32 request_method(const char *req, __u32 n)
{
	if (n >= 4 && req[3] == ' ') {
		if (req[0] == 'G' && req[1] == 'E' && req[2] == 'T')
			return M_GET;
		if (req[0] == 'P' && req[1] == 'U' && req[2] == 'T')
			return M_PUT;
	}
	if (n >= 5 && req[4] == ' ') {
		if (req[0] == 'P' && req[1] == 'O' && req[2] == 'S' && req[3] == 'T')
			return M_POST;
		if (req[0] == 'H' && req[1] == 'E' && req[2] == 'A' && req[3] == 'D')
			return M_HEAD;
	}
	return M_OTHER;
}

static __always_inline void count_host(__u32 hash)
{
	__u64 *v = bpf_map_lookup_elem(&host_hits, &hash);
	__u64 one = 1;

	if (!v) {
		if (!bpf_map_update_elem(&host_hits, &hash, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&host_hits, &hash);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

SEC("tcx/ingress")
int http_host_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct BlockRule *rule;
	struct HostEvent *ev;
	struct tcphdr *tcp;
	__u32 hlen, doff, payload, end, n, method, start, hash, host_len, i, j;
	__u64 *cnt;
	int verdict = TC_ACT_OK;
	__be32 saddr;
	char req[SNAP_LEN];

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
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	if (bpf_ntohs(tcp->dest) != http.port)
		return TC_ACT_OK;
	doff = tcp->doff * 4;
	if (doff < sizeof(*tcp))
		return TC_ACT_OK;
	saddr = ip->saddr;

	payload = sizeof(*eth) + hlen + doff;
	end = sizeof(*eth) + bpf_ntohs(ip->tot_len);
	if (end > skb->len)
		end = skb->len;
	if (payload >= end)
		return TC_ACT_OK;
	n = end - payload;
	if (n > SNAP_LEN)
		n = SNAP_LEN;
	/* clang knows n >= 1 here; the verifier must be told */
	barrier_var(n);
	if (n == 0)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, payload, req, n))
		return TC_ACT_OK;

	method = request_method(req, n);
	cnt = bpf_map_lookup_elem(&method_counts, &method);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (method == M_OTHER)
		return TC_ACT_OK;

	start = 0;
	for (i = 0; i + 7 <= n; i++) {
		if (req[i] == '\n' && (req[i + 1] | 0x20) == 'h' && (req[i + 2] | 0x20) == 'o' &&
		    (req[i + 3] | 0x20) == 's' && (req[i + 4] | 0x20) == 't' &&
		    req[i + 5] == ':' && req[i + 6] == ' ') {
			start = i + 7;
			break;
		}
	}
	if (!start) {
		__sync_fetch_and_add(&requests_without_host, 1);
		return TC_ACT_OK;
	}

	hash = FNV_OFFSET;
	host_len = 0;
	for (j = start; j < n; j++) {
		char c = req[j];

		if (c == '\r')
			break;
		hash = (hash ^ lower(c)) * FNV_PRIME;
		host_len++;
	}

	count_host(hash);
	rule = bpf_map_lookup_elem(&blocked_hosts, &hash);
	if (rule) {
		rule->matches += 1;
		if (http.enforce && !rule->log_only)
			verdict = TC_ACT_SHOT;
	}

	ev = bpf_ringbuf_reserve(&host_events, sizeof(*ev), 0);
	if (ev) {
		ev->saddr = saddr;
		ev->hash = hash;
		ev->host_len = host_len;
		ev->verdict = verdict;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&events_lost, 1);
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
