// SPDX-License-Identifier: GPL-2.0
/* blind15_xdp_radius_attrs.bpf.c — C twin of blind15_xdp_radius_attrs.ks.
 * XDP guard in front of a RADIUS authentication server (UDP 1812): validates the
 * RADIUS header, walks up to 64 attributes, counts attribute types, and drops
 * malformed messages and Access-Requests that break the configured policy.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define RADIUS_AUTH_PORT	1812
#define RADIUS_HDR_LEN		20
#define RADIUS_MAX_LEN		4096
#define MAX_ATTRS		64

#define CODE_ACCESS_REQUEST	1
#define CODE_STATUS_SERVER	12
#define ATTR_USER_NAME		1
#define ATTR_MESSAGE_AUTH	80

enum outcome {
	ACCEPTED = 0,
	MALFORMED = 1,
	BAD_CODE = 2,
	TOO_MANY_ATTRS = 3,
	USER_NAME_TOO_LONG = 4,
	NO_MESSAGE_AUTH = 5,
};

struct radius_hdr {
	__u8 code;
	__u8 identifier;
	__be16 length;
	__u8 authenticator[16];
};

struct client_state {
	__u64 requests;
	__u32 retransmits;
	__u32 last_id;
};

struct radius_config {
	__u32 max_user_name;
	bool require_message_auth;
};

struct radius_config radius SEC(".data.radius") = {
	.max_user_name = 64,
	.require_message_auth = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} attr_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct client_state);
} clients SEC(".maps");

__u64 inspected = 0;
__u64 malformed = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int radius_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;
	struct radius_hdr *hdr;
	__u8 *rad;
	__u32 ihl, udp_len, msg_len, pos, user_len = 0;
	__u32 outcome = ACCEPTED, ident = 0;
	bool has_auth = false;
	__u8 code = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < 20 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(RADIUS_AUTH_PORT))
		return XDP_PASS;

	__sync_fetch_and_add(&inspected, 1);

	udp_len = bpf_ntohs(udp->len);
	if (udp_len < 8 + RADIUS_HDR_LEN) {
		outcome = MALFORMED;
		goto out;
	}
	rad = (__u8 *)(udp + 1);
	if ((void *)(rad + RADIUS_HDR_LEN) > data_end) {
		outcome = MALFORMED;
		goto out;
	}
	hdr = (struct radius_hdr *)rad;
	code = hdr->code;
	ident = hdr->identifier;
	if (code != CODE_ACCESS_REQUEST && code != CODE_STATUS_SERVER) {
		outcome = BAD_CODE;
		goto out;
	}
	msg_len = bpf_ntohs(hdr->length);
	if (msg_len < RADIUS_HDR_LEN || msg_len > RADIUS_MAX_LEN || msg_len > udp_len - 8) {
		outcome = MALFORMED;
		goto out;
	}
	if ((void *)(rad + msg_len) > data_end) {
		outcome = MALFORMED;
		goto out;
	}

	pos = RADIUS_HDR_LEN;
	for (int i = 0; i < MAX_ATTRS; i++) {
		__u8 *attr;
		__u32 t, l;

		if (pos >= msg_len)
			break;
		if (pos + 2 > msg_len) {
			outcome = MALFORMED;
			goto out;
		}
		attr = rad + pos;
		if ((void *)(attr + 2) > data_end) {
			outcome = MALFORMED;
			goto out;
		}
		t = attr[0];
		l = attr[1];
		if (l < 2 || pos + l > msg_len) {
			outcome = MALFORMED;
			goto out;
		}
		count(&attr_counts, t);
		if (t == ATTR_USER_NAME) {
			user_len = l - 2;
		} else if (t == ATTR_MESSAGE_AUTH) {
			if (l != 18) {
				outcome = MALFORMED;
				goto out;
			}
			has_auth = true;
		}
		pos += l;
	}
	if (pos < msg_len) {
		outcome = TOO_MANY_ATTRS;
		goto out;
	}

	if (code == CODE_ACCESS_REQUEST) {
		if (user_len > radius.max_user_name)
			outcome = USER_NAME_TOO_LONG;
		else if (radius.require_message_auth && !has_auth)
			outcome = NO_MESSAGE_AUTH;
	}

out:
	count(&outcomes, outcome);
	if (outcome != ACCEPTED) {
		if (outcome <= TOO_MANY_ATTRS)
			__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}

	if (code == CODE_ACCESS_REQUEST) {
		__u32 src = ip->saddr;
		struct client_state *c = bpf_map_lookup_elem(&clients, &src);

		if (!c) {
			struct client_state init = {
				.requests = 1,
				.retransmits = 0,
				.last_id = ident,
			};

			bpf_map_update_elem(&clients, &src, &init, BPF_ANY);
		} else {
			__sync_fetch_and_add(&c->requests, 1);
			if (c->last_id == ident)
				__sync_fetch_and_add(&c->retransmits, 1);
			c->last_id = ident;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
