// SPDX-License-Identifier: GPL-2.0
/* blind16_xdp_stun_attrs.bpf.c — C twin of blind16_xdp_stun_attrs.ks: XDP guard in front of
 * a STUN/TURN server on UDP 3478 (header validation, bounded attribute walk, per-type counts,
 * oversized USERNAME in Binding requests dropped, malformed messages counted). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define IPPROTO_UDP_		17
#define STUN_PORT		3478
#define STUN_COOKIE		0x2112A442
#define STUN_BINDING_REQUEST	0x0001
#define ATTR_USERNAME		0x0006
#define MAX_ATTRS		16

struct stun_hdr {
	__be16 msg_type;
	__be16 msg_len;
	__be32 cookie;
	__u8 tid[12];
};

struct stun_attr {
	__be16 type;
	__be16 len;
};

struct stun_config {
	__u32 max_username;
	bool drop_malformed;
};

struct stun_config stun SEC(".data.stun") = {
	.max_username = 128,
	.drop_malformed = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} stun_types SEC(".maps");

__u64 malformed = 0;
__u64 channel_data = 0;
__u64 username_drops = 0;

SEC("xdp")
int stun_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__u32 ihl = ip->ihl;
	if (ihl < 5 || ip->protocol != IPPROTO_UDP_)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3FFF))
		return XDP_PASS;

	struct udphdr *udp = (void *)ip + ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(STUN_PORT))
		return XDP_PASS;

	__u8 *payload = (void *)(udp + 1);
	if ((void *)(payload + 1) > data_end)
		goto bad;

	__u8 lead = payload[0] & 0xC0;
	if (lead == 0x40) {
		__sync_fetch_and_add(&channel_data, 1);	/* TURN ChannelData */
		return XDP_PASS;
	}
	if (lead)
		goto bad;

	__u32 udp_len = bpf_ntohs(udp->len);
	if (udp_len < 28 || (void *)udp + udp_len > data_end)
		goto bad;

	struct stun_hdr *h = (void *)payload;
	if ((void *)(h + 1) > data_end)		/* implied by udp_len; for the verifier */
		goto bad;
	if (h->cookie != bpf_htonl(STUN_COOKIE))
		goto bad;

	__u16 msg_type = bpf_ntohs(h->msg_type);
	__u32 msg_len = bpf_ntohs(h->msg_len);
	if ((msg_len & 3) || 20 + msg_len > udp_len - 8)
		goto bad;

	__u32 msg_end = 20 + msg_len;	/* <= 65527 */
	__u32 stun_off = sizeof(struct ethhdr) + ihl * 4 + sizeof(struct udphdr);
	__u32 off = 20;
	bool long_username = false;

	for (int i = 0; i < MAX_ATTRS; i++) {
		if (off >= msg_end)
			break;
		/* off + 4 <= msg_end, so the attribute header is in the frame: neither
		 * test below can fail, they only give the verifier its range */
		__u32 pos = stun_off + off;
		if (pos > 0xffff - sizeof(struct stun_attr))
			goto bad;
		struct stun_attr *a = data + pos;
		if ((void *)(a + 1) > data_end)
			goto bad;
		__u32 alen = bpf_ntohs(a->len);
		__u32 step = 4 + ((alen + 3) & ~3u);
		if (off + step > msg_end)
			goto bad;
		if (a->type == bpf_htons(ATTR_USERNAME) && alen > stun.max_username)
			long_username = true;
		off += step;
	}

	__u64 *cnt = bpf_map_lookup_elem(&stun_types, &msg_type);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&stun_types, &msg_type, &one, BPF_NOEXIST);
	}

	if (msg_type == STUN_BINDING_REQUEST && long_username) {
		__sync_fetch_and_add(&username_drops, 1);
		return XDP_DROP;
	}
	return XDP_PASS;

bad:
	__sync_fetch_and_add(&malformed, 1);
	return stun.drop_malformed ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
