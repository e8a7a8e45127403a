// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/io_mac_swap_tx.ks: answer ICMP echo requests and
 * UDP echo (port 7) datagrams for the configured address from XDP by swapping MACs and IP
 * addresses (and turning the request into a reply) and returning XDP_TX. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define UDP_ECHO_PORT 7

/* config responder { addr: u32 = 0 } */
struct responder_config {
	__u32 addr;	/* network byte order; 0 answers for any address */
};

struct responder_config responder SEC(".data.responder") = {
	.addr = 0,
};

__u64 icmp_replies = 0;
__u64 udp_replies = 0;

SEC("xdp")
int reflector(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	unsigned char mac[ETH_ALEN];
	__u32 addr;

	/* Ethernet + IPv4 without options + the 8-byte ICMP or UDP header */
	if ((void *)(ip + 1) + 8 > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5)
		return XDP_PASS;
	if (responder.addr && ip->daddr != responder.addr)
		return XDP_PASS;

	if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = (void *)(ip + 1);
		__u32 sum;

		if (icmp->type != ICMP_ECHO || icmp->code != 0)
			return XDP_PASS;
		icmp->type = ICMP_ECHOREPLY;
		/* the type is the high byte of the first word: the checksum grows by 0x0800 */
		sum = bpf_ntohs(icmp->checksum) + 0x0800;
		sum = (sum & 0xFFFF) + (sum >> 16);
		icmp->checksum = bpf_htons(sum);
		__sync_fetch_and_add(&icmp_replies, 1);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if (udp->dest != bpf_htons(UDP_ECHO_PORT))
			return XDP_PASS;
		udp->dest = udp->source;
		udp->source = bpf_htons(UDP_ECHO_PORT);
		__sync_fetch_and_add(&udp_replies, 1);
	} else {
		return XDP_PASS;
	}

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
