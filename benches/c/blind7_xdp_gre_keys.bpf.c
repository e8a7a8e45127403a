// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind7_xdp_gre_keys.ks: parses GRE over IPv4,
 * locating the optional key after the optional checksum field, and counts packets per key;
 * keyless GRE is counted (and dropped when the policy requires a key); GRE with a non-zero
 * version, the routing bit, or a header past the frame is dropped and counted per reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_OFFSET_MASK 0x1fff

/* flags word, host order */
#define GRE_CSUM 0x8000
#define GRE_ROUTING 0x4000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000
#define GRE_VERSION_MASK 0x0007

enum {
	REASON_VERSION = 0,
	REASON_ROUTING = 1,
	REASON_TRUNCATED = 2,
	REASON_NO_KEY = 3,
};

/* config gre_policy { require_key: bool } */
struct gre_policy_config {
	bool require_key;
};

struct gre_policy_config gre_policy SEC(".data.gre_policy") = {
	.require_key = false,
};

/* GRE key (host order) -> packets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} key_packets SEC(".maps");

/* REASON_* -> dropped packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} rejected SEC(".maps");

/* .bss, in declaration order */
__u64 gre_packets = 0;
__u64 keyless = 0;
__u64 sequenced = 0;
__u64 fragments = 0;

static __always_inline int reject(__u32 reason)
{
	__u64 *cnt = bpf_map_lookup_elem(&rejected, &reason);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_DROP;
}

SEC("xdp")
int gre_keys(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct gre_base_hdr *gre;
	__u32 hdr_len, key;
	__u64 one = 1, *cnt;
	__be32 *keyp;
	__u16 flags;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_GRE)
		return XDP_PASS;
	if (ip->ihl < 5)
		return XDP_PASS;
	/* only the first fragment holds the GRE header */
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}

	gre = (void *)ip + ip->ihl * 4;
	if ((void *)(gre + 1) > data_end)
		return reject(REASON_TRUNCATED);
	__sync_fetch_and_add(&gre_packets, 1);

	flags = bpf_ntohs(gre->flags);
	if (flags & GRE_VERSION_MASK)
		return reject(REASON_VERSION);
	if (flags & GRE_ROUTING)
		return reject(REASON_ROUTING);

	/* optional fields: checksum + reserved, key, sequence number */
	hdr_len = sizeof(*gre);
	if (flags & GRE_CSUM)
		hdr_len += 4;
	keyp = (void *)gre + hdr_len;
	if (flags & GRE_KEY)
		hdr_len += 4;
	if (flags & GRE_SEQ)
		hdr_len += 4;
	if ((void *)gre + hdr_len > data_end)
		return reject(REASON_TRUNCATED);
	if (flags & GRE_SEQ)
		__sync_fetch_and_add(&sequenced, 1);

	if (!(flags & GRE_KEY)) {
		__sync_fetch_and_add(&keyless, 1);
		if (gre_policy.require_key)
			return reject(REASON_NO_KEY);
		return XDP_PASS;
	}

	/* covered by the header-length test; the verifier needs it on this pointer */
	if ((void *)(keyp + 1) > data_end)
		return XDP_PASS;
	key = bpf_ntohl(*keyp);

	/* key_packets[key] += 1, inserting the entry when missing */
	cnt = bpf_map_lookup_elem(&key_packets, &key);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&key_packets, &key, &one, BPF_NOEXIST)) {
		cnt = bpf_map_lookup_elem(&key_packets, &key);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
