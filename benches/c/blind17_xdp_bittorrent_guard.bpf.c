// SPDX-License-Identifier: GPL-2.0
/* BitTorrent guard: rate-limits BitTorrent peer handshakes (TCP) and UDP
 * tracker connect requests per IPv4 source with a token bucket in an LRU hash. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_8021Q	0x8100

#define BT_PSTRLEN		19
#define TRACKER_MAGIC		0x41727101980ULL
#define TRACKER_ACTION_CONNECT	0

#define BUCKET_BURST	4ULL
#define NS_PER_TOKEN	1000000000ULL

enum {
	ST_HANDSHAKE	= 0,
	ST_TRACKER	= 1,
	ST_ALLOWED	= 2,
	ST_LIMITED	= 3,
	ST_NEW_SOURCE	= 4,
	ST_BAD_HEADER	= 5,
};

struct bt_bucket {
	__u64 tokens;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct bt_bucket);
} bt_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} bt_stats SEC(".maps");

__u64 bt_matches = 0;
__u64 bt_drops = 0;

static const char bt_pstr[] = "BitTorrent protocol";

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&bt_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Takes one token from the source's bucket; false when it is empty. */
static __always_inline bool take_token(__u32 src)
{
	__u64 now = bpf_ktime_get_ns();
	struct bt_bucket *b = bpf_map_lookup_elem(&bt_buckets, &src);

	if (!b) {
		struct bt_bucket nb = {
			.tokens = BUCKET_BURST - 1,
			.last_ns = now,
		};

		bpf_map_update_elem(&bt_buckets, &src, &nb, BPF_ANY);
		stat_inc(ST_NEW_SOURCE);
		return true;
	}

	__u64 elapsed = now - b->last_ns;

	if (elapsed >= NS_PER_TOKEN) {
		__u64 tokens = b->tokens + elapsed / NS_PER_TOKEN;

		if (tokens > BUCKET_BURST)
			tokens = BUCKET_BURST;
		b->tokens = tokens;
		b->last_ns = now;
	}
	if (b->tokens == 0)
		return false;
	b->tokens -= 1;
	return true;
}

SEC("xdp")
int bittorrent_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth);
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q) {
		struct vlan_hdr *vlan = (void *)(eth + 1);

		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		l3 += sizeof(*vlan);
	}
	if (proto != ETH_P_IP)
		return XDP_PASS;

	struct iphdr *ip = data + l3;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;

	__u32 ihl = ip->ihl * 4;

	if (ihl < sizeof(*ip)) {
		stat_inc(ST_BAD_HEADER);
		return XDP_DROP;
	}
	/* Only first fragments carry the L4 header. */
	if (bpf_ntohs(ip->frag_off) & 0x1FFF)
		return XDP_PASS;

	__u32 src = ip->saddr;
	__u32 l4 = l3 + ihl;
	__u32 kind;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;

		__u32 doff = tcp->doff * 4;

		if (doff < sizeof(*tcp)) {
			stat_inc(ST_BAD_HEADER);
			return XDP_DROP;
		}

		__u8 *payload = data + l4 + doff;

		if ((void *)(payload + 20) > data_end)
			return XDP_PASS;
		if (payload[0] != BT_PSTRLEN)
			return XDP_PASS;
#pragma unroll
		for (int i = 0; i < BT_PSTRLEN; i++) {
			if (payload[1 + i] != (__u8)bt_pstr[i])
				return XDP_PASS;
		}
		kind = ST_HANDSHAKE;
	} else if (ip->protocol == IPPROTO_UDP) {
		__u8 *req = data + l4 + sizeof(struct udphdr);

		if ((void *)(req + 16) > data_end)
			return XDP_PASS;

		__u64 magic = 0;

#pragma unroll
		for (int i = 0; i < 8; i++)
			magic = (magic << 8) | req[i];
		if (magic != TRACKER_MAGIC)
			return XDP_PASS;

		__u32 action = ((__u32)req[8] << 24) | ((__u32)req[9] << 16) |
			       ((__u32)req[10] << 8) | req[11];

		if (action != TRACKER_ACTION_CONNECT)
			return XDP_PASS;
		kind = ST_TRACKER;
	} else {
		return XDP_PASS;
	}

	stat_inc(kind);
	__sync_fetch_and_add(&bt_matches, 1);
	if (take_token(src)) {
		stat_inc(ST_ALLOWED);
		return XDP_PASS;
	}
	stat_inc(ST_LIMITED);
	__sync_fetch_and_add(&bt_drops, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
