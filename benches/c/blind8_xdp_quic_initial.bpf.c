// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_quic_initial.ks: QUIC long-header census on IPv4 UDP to
 * quic.port. Short headers and version negotiation are counted and pass; long headers need the
 * fixed bit and connection IDs of at most 20 bytes; the DCID is hashed with FNV-1a into 64
 * buckets for Initial packets; versions are counted in a hash map of {packets, initials,
 * small_initials}; Initials with less than quic.min_initial bytes of UDP payload are dropped
 * when quic.enforce is set. The .ks throwing readers become functions returning the E_* code
 * (0 = ok); the catch clauses become one error path.
 * .bss: short_headers@0, version_negotiation@8, small_dropped@16, bad_udp@24. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define QUIC_V1 0x00000001
#define QUIC_V2 0x6b3343cf
#define MAX_CID_LEN 20

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

#define E_SHORT 1
#define E_CID_LEN 2
#define E_FIXED_BIT 3

struct quic_config {
	__u16 port;
	__u16 min_initial;
	bool enforce;
};

struct VersionStats {
	__u64 packets;
	__u64 initials;
	__u64 small_initials;
};

struct quic_config quic SEC(".data.quic") = {
	.port = 443,
	.min_initial = 1200,
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct VersionStats);
} versions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} cid_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} errors SEC(".maps");

__u64 short_headers = 0;
__u64 version_negotiation = 0;
__u64 small_dropped = 0;
__u64 bad_udp = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Connection IDs from frame offset off (the DCID length byte) up to limit: 0 and the DCID hash,
 * or the E_* code. */
static __always_inline int parse_cids(void *data, void *data_end, __u32 off, __u32 limit,
				      __u32 *hash)
{
	__u8 *p = data + off;
	__u32 dcid_len, scid_len, h = FNV_OFFSET;

	if ((void *)(p + 1) > data_end || off + 1 > limit)
		return E_SHORT;
	dcid_len = p[0];
	if (dcid_len > MAX_CID_LEN)
		return E_CID_LEN;
	/* the DCID and the SCID length byte after it */
	if (off + 2 + dcid_len > limit)
		return E_SHORT;
	for (__u32 i = 0; i < MAX_CID_LEN; i++) {
		if (i >= dcid_len)
			break;
		if ((void *)(p + 2 + i) > data_end)
			return E_SHORT;
		h = (h ^ p[1 + i]) * FNV_PRIME;
	}
	if ((void *)(p + 2 + dcid_len) > data_end)
		return E_SHORT;
	scid_len = p[1 + dcid_len];
	if (scid_len > MAX_CID_LEN)
		return E_CID_LEN;
	if (off + 2 + dcid_len + scid_len > limit)
		return E_SHORT;
	*hash = h;
	return 0;
}

static __always_inline bool is_initial(__u32 version, __u32 ptype)
{
	if (version == QUIC_V2)
		return ptype == 1;
	return (version == QUIC_V1 || (version >> 8) == 0xff0000) && ptype == 0;
}

static __always_inline void count_version(__u32 version, bool initial, bool small)
{
	struct VersionStats *vs = bpf_map_lookup_elem(&versions, &version);

	if (!vs) {
		struct VersionStats init = {
			.packets = 1,
			.initials = initial,
			.small_initials = small,
		};

		bpf_map_update_elem(&versions, &version, &init, BPF_ANY);
		return;
	}
	vs->packets += 1;
	if (initial)
		vs->initials += 1;
	if (small)
		vs->small_initials += 1;
}

SEC("xdp")
int quic_initial(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u32 l4, udp_len, limit, off, first, version, hash = 0;
	bool initial, small;
	__u8 *p;
	int err;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl < 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (bpf_ntohs(udp->dest) != quic.port)
		return XDP_PASS;
	udp_len = bpf_ntohs(udp->len);
	limit = l4 + udp_len;
	if (udp_len < sizeof(*udp) || data + limit > data_end) {
		__sync_fetch_and_add(&bad_udp, 1);
		return XDP_DROP;
	}
	/* keep clang from dropping the packet-pointer tests the verifier needs as implied by
	 * the limit tests */
	barrier_var(limit);
	off = l4 + sizeof(*udp);
	if (off == limit)
		return XDP_PASS;	/* empty datagram */

	/* off < limit <= frame length: the first byte is there */
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	first = p[0];
	if (!(first & 0x80)) {
		__sync_fetch_and_add(&short_headers, 1);
		return XDP_PASS;
	}
	if ((void *)(p + 5) > data_end || off + 5 > limit) {
		err = E_SHORT;
		goto fail;
	}
	version = (__u32)p[1] << 24 | (__u32)p[2] << 16 | (__u32)p[3] << 8 | p[4];
	if (version == 0) {
		__sync_fetch_and_add(&version_negotiation, 1);
		return XDP_PASS;
	}
	if (!(first & 0x40)) {
		err = E_FIXED_BIT;
		goto fail;
	}
	err = parse_cids(data, data_end, off + 5, limit, &hash);
	if (err)
		goto fail;

	initial = is_initial(version, (first >> 4) & 3);
	small = initial && udp_len - sizeof(*udp) < quic.min_initial;
	count_version(version, initial, small);
	if (initial)
		count(&cid_buckets, hash & 63);
	if (small && quic.enforce) {
		__sync_fetch_and_add(&small_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;

fail:
	count(&errors, err);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
