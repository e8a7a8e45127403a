// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind9_xdp_wireguard_guard.ks: WireGuard front door. UDP datagrams
 * to the configured port must hold a WireGuard message with zero reserved bytes, a known type
 * and the type's size; handshake initiations are limited per IPv4 source in an LRU hash.
 * Refusals are counted per reason and dropped (passed with enforce off); non-WireGuard traffic
 * passes. The .ks throwing readers become reason codes and a goto; the deferred accounting
 * (per type byte, bytes) runs at every exit once the datagram is known to be for the port. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET 0x1fff

#define WG_INITIATION 1
#define WG_RESPONSE 2
#define WG_COOKIE 3
#define WG_TRANSPORT 4

#define E_NOT_WG 1
#define E_SHORT 2
#define E_BAD_HEADER 3
#define E_BAD_TYPE 4
#define E_BAD_SIZE 5
#define E_LIMITED 6

struct wg_config {
	__u16 port;
	bool enforce;
	__u64 max_inits;
};

struct wg_config wg SEC(".data.wg") = {
	.port = 51820,
	.enforce = true,
	.max_inits = 8,
};

struct wg_hdr {
	__u8 msg_type;
	__u8 reserved[3];
	__u32 sender;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} handshakes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} msg_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} refused SEC(".maps");

__u64 wg_bytes = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, __u32 *key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, key);

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int size_ok(__u8 type, __u32 len)
{
	switch (type) {
	case WG_INITIATION:
		return len == 148;
	case WG_RESPONSE:
		return len == 92;
	case WG_COOKIE:
		return len == 64;
	case WG_TRANSPORT:
		return len >= 32 && (len & 15) == 0;
	default:
		return -1;
	}
}

SEC("xdp")
int wireguard_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	struct wg_hdr *hdr;
	__u32 reason, l4, ulen, len, src;
	__u8 type = 0;
	__u64 *seen;
	int ok;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto not_wg;
	if ((void *)(ip + 1) > data_end) {
		reason = E_SHORT;
		goto refuse;
	}
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(IP_OFFSET)))
		goto not_wg;
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end) {
		reason = E_SHORT;
		goto refuse;
	}
	if (udp->dest != bpf_htons(wg.port))
		goto not_wg;
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || data + l4 + ulen > data_end) {
		reason = E_SHORT;
		goto refuse;
	}
	src = ip->saddr;
	len = ulen - sizeof(*udp);

	/* from here on, every exit accounts the datagram */
	hdr = (void *)(udp + 1);
	if ((void *)(hdr + 1) > data_end) {
		reason = E_SHORT;
		goto account;
	}
	if (hdr->reserved[0] || hdr->reserved[1] || hdr->reserved[2]) {
		reason = E_BAD_HEADER;
		goto account;
	}
	type = hdr->msg_type;
	ok = size_ok(type, len);
	if (ok < 0) {
		reason = E_BAD_TYPE;
		goto account;
	}
	if (!ok) {
		reason = E_BAD_SIZE;
		goto account;
	}
	if (type == WG_INITIATION) {
		seen = bpf_map_lookup_elem(&handshakes, &src);
		if (seen && *seen >= wg.max_inits) {
			reason = E_LIMITED;
			goto account;
		}
		hash_inc(&handshakes, &src);
	}
	reason = 0;

account:
	count(&msg_types, type);
	__sync_fetch_and_add(&wg_bytes, len);
	if (!reason)
		return XDP_PASS;
refuse:
	count(&refused, reason);
	return wg.enforce ? XDP_DROP : XDP_PASS;

not_wg:
	count(&refused, E_NOT_WG);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
