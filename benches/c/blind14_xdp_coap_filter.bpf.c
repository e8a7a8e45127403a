// SPDX-License-Identifier: GPL-2.0
/* blind14_xdp_coap_filter.bpf.c — C twin of benches/programs/blind14_xdp_coap_filter.ks.
 * XDP filter for CoAP (UDP dport 5683) over IPv4, untagged or one 802.1Q tag: counts messages
 * per code class, walks at most 16 options to the first Uri-Path and drops the message when the
 * FNV-1a hash of that segment (at most 32 bytes) is in blocked_paths (counting the hit there).
 * Malformed messages and truncated frames are counted in globals and pass.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100
#define COAP_PORT	5683
#define URI_PATH	11
#define MAX_OPTIONS	16
#define MAX_HASH_LEN	32
#define FNV_BASIS	0x811c9dc5u
#define FNV_PRIME	0x01000193u
/* Bounds a packet offset for the verifier. XDP's linear data is at most a page, and every
 * offset masked here is already below the (checked) message end, so the mask changes nothing. */
#define PKT_OFF_MASK	0x3fff

struct coaphdr {
	__u8 ver_t_tkl;
	__u8 code;
	__be16 msg_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} code_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} blocked_paths SEC(".maps");

__u64 malformed = 0;
__u64 truncated = 0;

/* Resolves an option delta/length nibble: 13 and 14 take one or two extension bytes at *pos,
 * 15 is malformed. Returns -1 for a malformed option. */
static __always_inline int opt_nibble(void *data, void *data_end, __u32 *pos, __u32 msg_end,
				      __u32 *val)
{
	__u8 *p;

	if (*val < 13)
		return 0;
	if (*val == 15)
		return -1;
	if (*val == 13) {
		if (*pos + 1 > msg_end)
			return -1;
		p = data + (*pos & PKT_OFF_MASK);
		if ((void *)(p + 1) > data_end)
			return -1;
		*val = 13 + p[0];
		*pos += 1;
	} else {
		if (*pos + 2 > msg_end)
			return -1;
		p = data + (*pos & PKT_OFF_MASK);
		if ((void *)(p + 2) > data_end)
			return -1;
		*val = 269 + ((__u32)p[0] << 8 | p[1]);
		*pos += 2;
	}
	return 0;
}

SEC("xdp")
int coap_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct coaphdr *coap;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 l3 = sizeof(*eth), l4, udp_len, msg_end, tkl, cls, pos, number = 0;
	__u64 *cnt, *hits;
	__be16 proto;
	__u8 *s;
	__u32 path_len, n, h;
	int i;

	if ((void *)(eth + 1) > data_end)
		goto trunc;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			goto trunc;
		proto = vh->h_vlan_encapsulated_proto;
		l3 += sizeof(*vh);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		goto trunc;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	l4 = l3 + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		goto trunc;
	if (udp->dest != bpf_htons(COAP_PORT))
		return XDP_PASS;
	udp_len = bpf_ntohs(udp->len);
	msg_end = l4 + udp_len;
	if (data + msg_end > data_end)
		goto trunc;

	if (udp_len < sizeof(*udp) + sizeof(*coap))
		goto bad;
	coap = (void *)(udp + 1);
	/* clang derives this test from the msg_end one, which the verifier cannot use */
	barrier_var(coap);
	if ((void *)(coap + 1) > data_end)
		return XDP_PASS;
	if ((coap->ver_t_tkl >> 6) != 1)
		goto bad;
	tkl = coap->ver_t_tkl & 0x0f;
	if (tkl > 8)
		goto bad;
	cls = coap->code >> 5;
	cnt = bpf_map_lookup_elem(&code_classes, &cls);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	pos = l4 + sizeof(*udp) + sizeof(*coap) + tkl;
	if (pos > msg_end)
		goto bad;

	for (i = 0; i < MAX_OPTIONS; i++) {
		__u32 b, delta, olen;
		__u8 *p;

		if (pos >= msg_end)
			return XDP_PASS;
		/* one range for pos on every path into the next option keeps the states prunable */
		pos &= PKT_OFF_MASK;
		p = data + pos;
		if ((void *)(p + 1) > data_end)
			return XDP_PASS;
		b = *p;
		if (b == 0xff)			/* payload marker */
			return XDP_PASS;
		pos++;
		delta = b >> 4;
		olen = b & 0x0f;
		if (opt_nibble(data, data_end, &pos, msg_end, &delta) ||
		    opt_nibble(data, data_end, &pos, msg_end, &olen))
			goto bad;
		if (pos + olen > msg_end)
			goto bad;
		number += delta;
		if (number == URI_PATH) {
			path_len = olen;
			goto uri_path;
		}
		if (number > URI_PATH)		/* options are sorted */
			return XDP_PASS;
		pos += olen;
	}
	return XDP_PASS;

uri_path:
	n = path_len < MAX_HASH_LEN ? path_len : MAX_HASH_LEN;
	s = data + (pos & PKT_OFF_MASK);
	h = FNV_BASIS;
	for (i = 0; i < MAX_HASH_LEN; i++) {
		if (i >= n)
			break;
		if ((void *)(s + i + 1) > data_end)
			return XDP_PASS;
		h = (h ^ s[i]) * FNV_PRIME;
	}
	hits = bpf_map_lookup_elem(&blocked_paths, &h);
	if (!hits)
		return XDP_PASS;
	__sync_fetch_and_add(hits, 1);
	return XDP_DROP;

bad:
	__sync_fetch_and_add(&malformed, 1);
	return XDP_PASS;
trunc:
	__sync_fetch_and_add(&truncated, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
