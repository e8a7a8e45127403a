// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind6_xdp_frag_guard.ks: classifies IPv4 packets as
 * unfragmented / first / middle / last fragment, drops tiny first fragments (payload below the
 * configured minimum) and fragments reassembling past 65535 bytes unless they come from the
 * trusted source, and counts classes, drops per source, malformed headers and bytes seen. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define MAX_DATAGRAM 65535

#define CLS_UNFRAGMENTED 0
#define CLS_FIRST 1
#define CLS_MIDDLE 2
#define CLS_LAST 3
#define CLS_TINY 4
#define CLS_OVERSIZE 5

/* config frag_policy { min_first_payload: u16, trusted_src: u32 } */
struct frag_policy_config {
	__u16 min_first_payload;
	__u32 trusted_src;
};

struct frag_policy_config frag_policy SEC(".data.frag_policy") = {
	.min_first_payload = 64,
	.trusted_src = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} frag_class SEC(".maps");

/* source address (host order) -> fragments dropped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} drops_by_src SEC(".maps");

/* .bss, in declaration order */
__u64 bytes_seen = 0;
__u64 malformed = 0;

static __always_inline void class_inc(__u32 cls)
{
	__u64 *v = bpf_map_lookup_elem(&frag_class, &cls);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int drop_from(__u32 src)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&drops_by_src, &src);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else if (bpf_map_update_elem(&drops_by_src, &src, &one, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&drops_by_src, &src);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
	return XDP_DROP;
}

static __always_inline int malformed_drop(void)
{
	__sync_fetch_and_add(&malformed, 1);
	return XDP_DROP;
}

SEC("xdp")
int frag_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 hdr_len, tot_len, payload, offset, src;
	__u16 frag;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return malformed_drop();
	if (ip->version != 4 || ip->ihl < 5)
		return malformed_drop();
	hdr_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len)
		return malformed_drop();
	__sync_fetch_and_add(&bytes_seen, tot_len);
	payload = tot_len - hdr_len;

	frag = bpf_ntohs(ip->frag_off);
	offset = frag & IP_OFFSET;
	if (!(frag & IP_MF) && !offset) {
		class_inc(CLS_UNFRAGMENTED);
		return XDP_PASS;
	}

	src = bpf_ntohl(ip->saddr);

	if (!offset) {
		class_inc(CLS_FIRST);
		if (payload < frag_policy.min_first_payload) {
			class_inc(CLS_TINY);
			if (src != frag_policy.trusted_src)
				return drop_from(src);
		}
		return XDP_PASS;
	}

	class_inc((frag & IP_MF) ? CLS_MIDDLE : CLS_LAST);
	if (offset * 8 + payload > MAX_DATAGRAM) {
		class_inc(CLS_OVERSIZE);
		if (src != frag_policy.trusted_src)
			return drop_from(src);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
