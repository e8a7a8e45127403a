// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_icmp_echo.ks: answer ICMP echo requests to the
 * configured address from XDP — swap MACs and IP addresses, turn the request into a reply with
 * TTL 64, update the ICMP and IP checksums incrementally (RFC 1624) — and return XDP_TX. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define REPLY_TTL 64

/* config echo { addr: u32 = 0 } */
struct echo_config {
	__u32 addr;	/* network byte order */
};

struct echo_config echo SEC(".data.echo") = {
	.addr = 0,
};

__u64 echo_replies = 0;

/* RFC 1624 eqn. 3: the checksum after one 16-bit word changes from old to new (host order) */
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32)new;

	sum = (sum & 0xFFFF) + (sum >> 16);
	sum = (sum & 0xFFFF) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int icmp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp;
	unsigned char mac[ETH_ALEN];
	__u32 addr, ihl;
	__u16 old_word;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 ||
	    ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	if (ip->daddr != echo.addr)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	icmp = (void *)ip + ihl;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != ICMP_ECHO || icmp->code != 0)
		return XDP_PASS;

	/* type and code form the first word of the ICMP header */
	icmp->type = ICMP_ECHOREPLY;
	icmp->checksum = bpf_htons(csum_replace(bpf_ntohs(icmp->checksum), ICMP_ECHO << 8, 0));

	/* TTL and protocol form one word of the IP header */
	old_word = (__u16)ip->ttl << 8 | IPPROTO_ICMP;
	ip->ttl = REPLY_TTL;
	ip->check = bpf_htons(csum_replace(bpf_ntohs(ip->check), old_word,
					   REPLY_TTL << 8 | IPPROTO_ICMP));

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	__sync_fetch_and_add(&echo_replies, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
