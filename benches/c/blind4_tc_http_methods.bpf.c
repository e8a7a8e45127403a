// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind4_tc_http_methods.ks: tc ingress classifier of HTTP request
 * methods on IPv4 TCP to the configured port. The first 8 payload bytes are loaded with
 * bpf_skb_load_bytes and compared as words; a request gets skb->mark = mark_base + method and
 * is counted per method (per-CPU {packets, bytes}); other payload is counted as "other".
 * DELETE is dropped when deny_delete is set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define M_GET 0
#define M_POST 1
#define M_PUT 2
#define M_HEAD 3
#define M_DELETE 4
#define M_OTHER 5

/* Bytes a, b, c, d as they lie in memory, read as a little-endian word. */
#define W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

struct http_config {
	__u32 mark_base;
	__u16 port;
	bool deny_delete;
};

struct MethodStats {
	__u64 packets;
	__u64 bytes;
};

struct http_config http SEC(".data.http") = {
	.mark_base = 0x4800,
	.port = 80,
	.deny_delete = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, struct MethodStats);
} method_stats SEC(".maps");

static __always_inline __u32 classify(const __u32 *w)
{
	__u32 w0 = w[0];

	if (w0 == W4('G', 'E', 'T', ' '))
		return M_GET;
	if (w0 == W4('P', 'U', 'T', ' '))
		return M_PUT;
	if (w0 == W4('P', 'O', 'S', 'T') && (w[1] & 0xff) == ' ')
		return M_POST;
	if (w0 == W4('H', 'E', 'A', 'D') && (w[1] & 0xff) == ' ')
		return M_HEAD;
	if (w0 == W4('D', 'E', 'L', 'E') && (w[1] & 0xffffff) == W4('T', 'E', ' ', 0))
		return M_DELETE;
	return M_OTHER;
}

SEC("tcx/ingress")
int http_methods(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct MethodStats *st;
	struct tcphdr *tcp;
	__u32 hlen, doff, payload_off, ip_end, method = M_OTHER;
	__u32 req[2];

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
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
	payload_off = sizeof(*eth) + hlen + doff;
	ip_end = sizeof(*eth) + bpf_ntohs(ip->tot_len);
	if (doff < sizeof(*tcp) || payload_off >= ip_end)
		return TC_ACT_OK;

	if (ip_end - payload_off >= sizeof(req) &&
	    bpf_skb_load_bytes(skb, payload_off, req, sizeof(req)) == 0)
		method = classify(req);

	st = bpf_map_lookup_elem(&method_stats, &method);
	if (st) {
		st->packets += 1;
		st->bytes += skb->len;
	}
	if (method == M_OTHER)
		return TC_ACT_OK;
	skb->mark = http.mark_base + method;
	if (method == M_DELETE && http.deny_delete)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
