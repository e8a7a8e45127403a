// SPDX-License-Identifier: GPL-2.0
/* HTTP request-line path ACL at TC ingress (hand-written twin of
 * blind18_tc_http_path_acl.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100
#define IPPROTO_TCP_NR	6

#define HTTP_PORT	80
#define HTTP_ALT_PORT	8080
#define MAX_RULES	8
#define PREFIX_MAX	28
#define SNAP_LEN	64
#define MIN_REQUEST	16

struct path_rule {
	__u32 len;
	__u8 prefix[PREFIX_MAX];
};

struct vlan_hdr_s {
	__u16 tci;
	__u16 inner_proto;
};

enum method {
	METHOD_GET = 0,
	METHOD_POST = 1,
	METHOD_PUT = 2,
	METHOD_DELETE = 3,
	METHOD_HEAD = 4,
	METHOD_OPTIONS = 5,
	METHOD_UNKNOWN = 6,
};

struct http_acl_config {
	bool enforce;
};

struct http_acl_config http_acl SEC(".data.http_acl") = {
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct path_rule);
} deny_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} method_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

__u64 http_requests = 0;
__u64 denied_requests = 0;
__u64 non_http_payloads = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The caller guarantees at least MIN_REQUEST bytes in req. */
static __always_inline enum method parse_method(const __u8 *req)
{
	switch (req[0]) {
	case 'G':
		if (req[1] == 'E' && req[2] == 'T' && req[3] == ' ')
			return METHOD_GET;
		return METHOD_UNKNOWN;
	case 'P':
		if (req[1] == 'O' && req[2] == 'S' && req[3] == 'T' && req[4] == ' ')
			return METHOD_POST;
		if (req[1] == 'U' && req[2] == 'T' && req[3] == ' ')
			return METHOD_PUT;
		return METHOD_UNKNOWN;
	case 'D':
		if (req[1] == 'E' && req[2] == 'L' && req[3] == 'E' && req[4] == 'T' &&
		    req[5] == 'E' && req[6] == ' ')
			return METHOD_DELETE;
		return METHOD_UNKNOWN;
	case 'H':
		if (req[1] == 'E' && req[2] == 'A' && req[3] == 'D' && req[4] == ' ')
			return METHOD_HEAD;
		return METHOD_UNKNOWN;
	case 'O':
		if (req[1] == 'P' && req[2] == 'T' && req[3] == 'I' && req[4] == 'O' &&
		    req[5] == 'N' && req[6] == 'S' && req[7] == ' ')
			return METHOD_OPTIONS;
		return METHOD_UNKNOWN;
	default:
		return METHOD_UNKNOWN;
	}
}

SEC("tcx/ingress")
int http_path_acl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 l3 = sizeof(*eth), l4, off, n, path_off;
	__u16 proto;
	__u8 buf[SNAP_LEN];
	enum method method;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr_s *vlan = data + sizeof(*eth);

		if ((void *)(vlan + 1) > data_end)
			return TC_ACT_OK;
		proto = vlan->inner_proto;
		l3 = sizeof(*eth) + sizeof(*vlan);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (ip->ihl < 5 || ip->protocol != IPPROTO_TCP_NR)
		return TC_ACT_OK;
	/* Later fragments carry no TCP header. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return TC_ACT_OK;

	l4 = l3 + ip->ihl * 4;
	tcp = data + l4;
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	if (tcp->dest != bpf_htons(HTTP_PORT) && tcp->dest != bpf_htons(HTTP_ALT_PORT))
		return TC_ACT_OK;
	if (tcp->doff < 5)
		return TC_ACT_OK;

	off = l4 + tcp->doff * 4;
	if (off >= skb->len)
		return TC_ACT_OK;	/* no payload: handshake or bare ACK */

	n = skb->len - off;
	if (n < MIN_REQUEST) {
		__sync_fetch_and_add(&non_http_payloads, 1);
		return TC_ACT_OK;
	}
	if (n > SNAP_LEN)
		n = SNAP_LEN;

	if (bpf_skb_load_bytes(skb, off, buf, n) < 0)
		return TC_ACT_OK;

	method = parse_method(buf);
	switch (method) {
	case METHOD_GET:	path_off = 4; break;
	case METHOD_POST:	path_off = 5; break;
	case METHOD_PUT:	path_off = 4; break;
	case METHOD_DELETE:	path_off = 7; break;
	case METHOD_HEAD:	path_off = 5; break;
	case METHOD_OPTIONS:	path_off = 8; break;
	default:		path_off = 0; break;
	}
	if (path_off == 0) {
		__sync_fetch_and_add(&non_http_payloads, 1);
		return TC_ACT_OK;
	}
	__sync_fetch_and_add(&http_requests, 1);
	array_inc(&method_hits, method);

	for (__u32 i = 0; i < MAX_RULES; i++) {
		__u32 key = i;
		struct path_rule *rule = bpf_map_lookup_elem(&deny_paths, &key);
		__u32 len;
		bool same = true;

		if (!rule)
			continue;
		len = rule->len;
		if (len == 0 || len > PREFIX_MAX)
			continue;
		if (path_off + len > n)
			continue;
		for (__u32 j = 0; j < PREFIX_MAX; j++) {
			if (j >= len)
				break;
			if (buf[path_off + j] != rule->prefix[j]) {
				same = false;
				break;
			}
		}
		if (same) {
			array_inc(&rule_hits, i);
			__sync_fetch_and_add(&denied_requests, 1);
			if (http_acl.enforce)
				return TC_ACT_SHOT;
			return TC_ACT_OK;
		}
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
