// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_xdp_udp_echo.ks: an RFC 862 UDP echo responder in XDP.
 * IPv4 UDP to the configured port (no fragments, no options, consistent lengths, source port
 * >= min_src_port) is answered with XDP_TX: MACs, addresses and ports swapped, TTL set to
 * reply_ttl with an RFC 1624 update of the IP checksum. Payloads longer than max_payload
 * (rounded down to even) are cut: the removed words and both copies of the UDP length are taken
 * out of the UDP checksum (0 stays 0), the lengths rewritten, and bpf_xdp_adjust_tail shrinks
 * the frame. Refusals are counted in `stats`, replies per client in an LRU hash. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define ETH_ALEN 6

/* An XDP frame lies in one page: no payload reaches past 4096 bytes. */
#define MAX_FRAME 4096
#define MAX_WORDS (MAX_FRAME / 2)

enum { REPLIED, TRIMMED, REJ_FRAGMENT, REJ_OPTIONS, REJ_MALFORMED, REJ_LOW_PORT, TRIM_FAILED };

struct echo_config {
	__u16 port;
	__u8 reply_ttl;
	__u16 max_payload;
	__u16 min_src_port;
};

struct echo_config echo SEC(".data.echo") = {
	.port = 7,
	.reply_ttl = 64,
	.max_payload = 512,
	.min_src_port = 1024,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} replies_by_client SEC(".maps");

__u64 echoed_bytes = 0;

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_client(__u32 client)
{
	__u64 *v = bpf_map_lookup_elem(&replies_by_client, &client);
	__u64 one = 1;

	if (!v) {
		if (!bpf_map_update_elem(&replies_by_client, &client, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&replies_by_client, &client);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

SEC("xdp")
int udp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 ihl, frame_len, tot, ulen, payload_len, keep, new_ulen, new_tot, cut = 0;
	__u32 old_ttl_word, new_ttl_word, isum;
	__u8 mac[ETH_ALEN];
	struct udphdr *udp;
	__be32 client;
	__be16 sport;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		count(REJ_FRAGMENT);
		return XDP_PASS;
	}
	ihl = ip->ihl;
	if (ihl < 5)
		return XDP_PASS;
	udp = (void *)ip + ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(echo.port))
		return XDP_PASS;
	if (ihl != 5) {
		count(REJ_OPTIONS);
		return XDP_PASS;
	}

	frame_len = data_end - data;
	tot = bpf_ntohs(ip->tot_len);
	ulen = bpf_ntohs(udp->len);
	if (ulen < 8 || tot != 20 + ulen || 14 + tot > frame_len) {
		count(REJ_MALFORMED);
		return XDP_DROP;
	}
	if (bpf_ntohs(udp->source) < echo.min_src_port) {
		count(REJ_LOW_PORT);
		return XDP_DROP;
	}

	payload_len = ulen - 8;
	keep = echo.max_payload & 0xfffe;
	new_ulen = ulen;
	if (payload_len > keep) {
		__u32 check = bpf_ntohs(udp->check);

		new_ulen = 8 + keep;
		cut = frame_len - (34 + new_ulen);	/* Ethernet padding goes too */
		if (check) {
			/* RFC 1624: the length changes twice, each removed word m goes to 0 */
			__u32 sum = (check ^ 0xffff) + 2 * ((ulen ^ 0xffff) + new_ulen);
			__u8 *p = data + 42 + (keep & (MAX_FRAME - 1));
			__u8 *stop = data + 14 + tot;
			int i;

			for (i = 0; i < MAX_WORDS; i++) {
				if (p + 2 > stop || p + 2 > (__u8 *)data_end)
					break;
				sum += ((__u32)p[0] << 8 | p[1]) ^ 0xffff;
				p += 2;
			}
			if (p < stop && p + 1 <= (__u8 *)data_end)
				sum += ((__u32)p[0] << 8) ^ 0xffff;	/* odd last byte, zero-padded */
			check = (__u16)~fold(sum);
			udp->check = bpf_htons(check ? check : 0xffff);
		}
		udp->len = bpf_htons(new_ulen);
	}

	/* the TTL shares a word with the protocol; the total length may change too */
	new_tot = 20 + new_ulen;
	old_ttl_word = (__u32)ip->ttl << 8 | IPPROTO_UDP;
	new_ttl_word = (__u32)echo.reply_ttl << 8 | IPPROTO_UDP;
	isum = (__u16)~bpf_ntohs(ip->check) + (old_ttl_word ^ 0xffff) + new_ttl_word +
	       (tot ^ 0xffff) + new_tot;
	ip->check = bpf_htons((__u16)~fold(isum));
	ip->ttl = echo.reply_ttl;
	ip->tot_len = bpf_htons(new_tot);

	client = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = client;
	sport = udp->source;
	udp->source = udp->dest;
	udp->dest = sport;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	if (cut) {
		count(TRIMMED);
		if (bpf_xdp_adjust_tail(ctx, -(int)cut)) {
			count(TRIM_FAILED);
			return XDP_DROP;
		}
	}
	count(REPLIED);
	count_client(client);
	__sync_fetch_and_add(&echoed_bytes, new_ulen - 8);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
