// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_mac_table.ks: MAC learning (source MAC ->
 * ingress ifindex, with station moves) and, when configured, dropping unicast frames to
 * destinations nobody has learned. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_ALEN 6

/* 6 bytes, no padding */
struct MacAddr {
	__u8 b[6];
};

/* config bridge { drop_unknown: bool = false } */
struct bridge_config {
	bool drop_unknown;
};

struct bridge_config bridge SEC(".data.bridge") = {
	.drop_unknown = false,
};

/* MAC -> ifindex it was learned on */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct MacAddr);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mac_table SEC(".maps");

__u64 learned = 0;
__u64 moved = 0;
__u64 unknown_dropped = 0;

SEC("xdp")
int mac_learn(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct MacAddr mac;
	__u32 port, *known;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	port = ctx->ingress_ifindex;

	/* learn unicast sources only; a group address as source is bogus */
	if (!(eth->h_source[0] & 1)) {
		__builtin_memcpy(mac.b, eth->h_source, ETH_ALEN);
		known = bpf_map_lookup_elem(&mac_table, &mac);
		if (!known) {
			bpf_map_update_elem(&mac_table, &mac, &port, BPF_ANY);
			__sync_fetch_and_add(&learned, 1);
		} else if (*known != port) {
			*known = port;	/* the station moved */
			__sync_fetch_and_add(&moved, 1);
		}
	}

	/* broadcast and multicast destinations are always delivered */
	if (eth->h_dest[0] & 1)
		return XDP_PASS;
	if (!bridge.drop_unknown)
		return XDP_PASS;
	__builtin_memcpy(mac.b, eth->h_dest, ETH_ALEN);
	if (!bpf_map_lookup_elem(&mac_table, &mac)) {
		__sync_fetch_and_add(&unknown_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
