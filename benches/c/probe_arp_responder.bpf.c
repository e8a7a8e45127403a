// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/probe_arp_responder.ks: answer ARP requests for the
 * addresses in arp_table from XDP — rewrite the request into a reply in place (requester
 * becomes the target, the table's MAC and the asked-for address the sender, opcode 2, frame
 * addressed back to the requester) and XDP_TX it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_ARP 0x0806
#define ETH_P_IP 0x0800
#define ETH_ALEN 6
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

/* ARP for IPv4 over Ethernet */
struct arp_eth {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 ar_sha[ETH_ALEN];
	__u8 ar_sip[4];
	__u8 ar_tha[ETH_ALEN];
	__u8 ar_tip[4];
};

struct MacAddr {
	__u8 addr[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);	/* IPv4 address, host order */
	__type(value, struct MacAddr);
} arp_table SEC(".maps");

__u64 arp_replies = 0;

SEC("xdp")
int arp_responder(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp = (void *)(eth + 1);
	struct MacAddr *ours;
	__u32 tip, sip, key;

	if ((void *)(arp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_ARP))
		return XDP_PASS;
	if (arp->ar_hrd != bpf_htons(ARPHRD_ETHER) || arp->ar_pro != bpf_htons(ETH_P_IP) ||
	    arp->ar_hln != ETH_ALEN || arp->ar_pln != 4 || arp->ar_op != bpf_htons(ARPOP_REQUEST))
		return XDP_PASS;

	__builtin_memcpy(&tip, arp->ar_tip, 4);
	__builtin_memcpy(&sip, arp->ar_sip, 4);
	if (tip == sip)
		return XDP_PASS;	/* gratuitous ARP: nothing to answer */
	key = bpf_ntohl(tip);
	ours = bpf_map_lookup_elem(&arp_table, &key);
	if (!ours)
		return XDP_PASS;

	/* the requester becomes the target */
	__builtin_memcpy(arp->ar_tha, arp->ar_sha, ETH_ALEN);
	__builtin_memcpy(arp->ar_tip, &sip, 4);
	/* we are the sender */
	__builtin_memcpy(arp->ar_sha, ours->addr, ETH_ALEN);
	__builtin_memcpy(arp->ar_sip, &tip, 4);
	arp->ar_op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ours->addr, ETH_ALEN);
	__sync_fetch_and_add(&arp_replies, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
