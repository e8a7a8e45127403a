// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind8_xdp_vxlan_inner.ks: VXLAN accounting. Outer Ethernet/IPv4/UDP
 * to the configured port, the VXLAN header (I flag) and the inner Ethernet (+ IPv4) header are
 * parsed; good frames are counted per {vni, inner ethertype, inner protocol} in two hashes
 * (packets, bytes), parse failures per reason in an array (not VXLAN: pass; malformed: drop
 * unless drop_malformed is off). The .ks throwing parsers become reason codes and a jump; the
 * deferred parse-depth count is done at the single exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define VXLAN_FLAG_I 0x08000000

#define E_NOT_VXLAN 1
#define E_OUTER_SHORT 2
#define E_OUTER_BAD_IP 3
#define E_BAD_FLAGS 4
#define E_INNER_SHORT 5
#define E_INNER_BAD_IP 6

#define D_NONE 0
#define D_OUTER 1
#define D_VXLAN 2
#define D_INNER 3

struct tunnel_config {
	__u16 udp_port;
	bool drop_malformed;
};

struct tunnel_config tunnel SEC(".data.tunnel") = {
	.udp_port = 4789,
	.drop_malformed = true,
};

struct vxlan_hdr {
	__be32 flags;
	__be32 vni;	/* VNI in the upper 24 bits */
};

struct VniKey {
	__u32 vni;
	__u16 ethertype;
	__u8 protocol;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct VniKey);
	__type(value, __u64);
} vni_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct VniKey);
	__type(value, __u64);
} vni_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} tunnel_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} parse_depth SEC(".maps");

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void add(void *map, struct VniKey *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);

	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(map, key);
	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("xdp")
int vxlan_inner(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, *ieth;
	struct iphdr *ip = (void *)(eth + 1), *iip;
	struct vxlan_hdr *vx;
	struct udphdr *udp;
	struct VniKey key;
	__u32 depth = D_NONE, reason, hlen;
	int verdict;

	if ((void *)(eth + 1) > data_end) {
		reason = E_OUTER_SHORT;
		goto fail;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		reason = E_NOT_VXLAN;
		goto fail;
	}
	if ((void *)(ip + 1) > data_end) {
		reason = E_OUTER_SHORT;
		goto fail;
	}
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip)) {
		reason = E_OUTER_BAD_IP;
		goto fail;
	}
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))) {
		reason = E_NOT_VXLAN;
		goto fail;
	}
	udp = (void *)ip + hlen;
	if ((void *)(udp + 1) > data_end) {
		reason = E_OUTER_SHORT;
		goto fail;
	}
	if (udp->dest != bpf_htons(tunnel.udp_port)) {
		reason = E_NOT_VXLAN;
		goto fail;
	}
	depth = D_OUTER;

	vx = (void *)(udp + 1);
	if ((void *)(vx + 1) > data_end) {
		reason = E_OUTER_SHORT;
		goto fail;
	}
	if (!(vx->flags & bpf_htonl(VXLAN_FLAG_I))) {
		reason = E_BAD_FLAGS;
		goto fail;
	}
	__builtin_memset(&key, 0, sizeof(key));
	key.vni = bpf_ntohl(vx->vni) >> 8;
	depth = D_VXLAN;

	ieth = (void *)(vx + 1);
	if ((void *)(ieth + 1) > data_end) {
		reason = E_INNER_SHORT;
		goto fail;
	}
	key.ethertype = bpf_ntohs(ieth->h_proto);
	if (key.ethertype == ETH_P_IP) {
		iip = (void *)(ieth + 1);
		if ((void *)(iip + 1) > data_end) {
			reason = E_INNER_SHORT;
			goto fail;
		}
		hlen = iip->ihl * 4;
		if (iip->version != 4 || hlen < sizeof(*iip) || bpf_ntohs(iip->tot_len) < hlen) {
			reason = E_INNER_BAD_IP;
			goto fail;
		}
		key.protocol = iip->protocol;
	}
	depth = D_INNER;

	add(&vni_packets, &key, 1);
	add(&vni_bytes, &key, data_end - data);
	verdict = XDP_PASS;
	goto out;

fail:
	count(&tunnel_errors, reason);
	verdict = (reason == E_NOT_VXLAN || !tunnel.drop_malformed) ? XDP_PASS : XDP_DROP;
out:
	count(&parse_depth, depth);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
