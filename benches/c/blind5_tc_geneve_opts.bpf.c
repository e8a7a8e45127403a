// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_tc_geneve_opts.ks: walks the option TLVs of GENEVE packets
 * (IPv4 UDP to 6081) on tc ingress, counts options per class, marks packets carrying the
 * configured option with mark_base + VNI (counted per VNI) and drops packets whose options
 * overrun the option area or the datagram. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define GENEVE_PORT 6081
#define MAX_OPTS 8

#define ST_PACKETS 0
#define ST_BAD_VERSION 1
#define ST_MALFORMED 2
#define ST_CAPPED 3
#define ST_MARKED 4

struct geneve_config {
	__u16 opt_class;
	__u8 opt_type;
	__u32 mark_base;
};

struct geneve_config geneve SEC(".data.geneve") = {
	.opt_class = 0x0102,
	.opt_type = 0x80,
	.mark_base = 0x6e000000,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} opt_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} marked_vnis SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} geneve_stats SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&geneve_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void hash_inc(void *map, const void *key)
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

SEC("tcx/ingress")
int geneve_opts(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct genevehdr *gh;
	struct udphdr *udp;
	__u32 opts_len, off = 0, n;
	__u16 want_class;
	__u8 want_type, *opts;
	bool found = false;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_UDP || ip->ihl < 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return TC_ACT_OK;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (udp->dest != bpf_htons(GENEVE_PORT))
		return TC_ACT_OK;
	gh = (void *)(udp + 1);
	if ((void *)(gh + 1) > data_end)
		return TC_ACT_OK;
	bump(ST_PACKETS);
	if (gh->ver != 0) {
		bump(ST_BAD_VERSION);
		return TC_ACT_OK;
	}
	opts_len = gh->opt_len * 4;
	opts = (__u8 *)(gh + 1);
	if (sizeof(*udp) + sizeof(*gh) + opts_len > bpf_ntohs(udp->len) ||
	    (void *)(opts + opts_len) > data_end)
		goto malformed;

	want_class = geneve.opt_class;
	want_type = geneve.opt_type;
	for (n = 0; n < MAX_OPTS && off < opts_len; n++) {
		struct geneve_opt *opt;
		__u32 body;
		__u16 class;

		if (off + 4 > opts_len || (void *)(opts + off + 4) > data_end)
			goto malformed;
		opt = (void *)(opts + off);
		body = opt->length * 4;
		if (off + 4 + body > opts_len)
			goto malformed;
		class = bpf_ntohs(opt->opt_class);
		hash_inc(&opt_classes, &class);
		if (class == want_class && opt->type == want_type)
			found = true;
		off += 4 + body;
	}
	if (off < opts_len)
		bump(ST_CAPPED);

	if (found) {
		__u32 vni = (gh->vni[0] << 16) | (gh->vni[1] << 8) | gh->vni[2];

		skb->mark = geneve.mark_base + vni;
		hash_inc(&marked_vnis, &vni);
		bump(ST_MARKED);
	}
	return TC_ACT_OK;

malformed:
	bump(ST_MALFORMED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
