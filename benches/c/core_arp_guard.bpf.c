// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/core_arp_guard.ks: on ingress, drop ARP
 * packets whose sender IPv4 address is not a known sender; count ARP opcodes.
 * ARP probes (sender 0.0.0.0) pass. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_ARP 0x0806
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* key: sender address (host byte order); value: 1 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} known_senders SEC(".maps");

/* index: 1 = request, 2 = reply, 0 = other opcodes */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} arp_ops SEC(".maps");

__u64 arp_rejected = 0;

/* ARP for IPv4 over Ethernet */
struct arp_eth_ipv4 {
	struct arphdr hdr;
	__u8 ar_sha[6];
	__u8 ar_sip[4];
	__u8 ar_tha[6];
	__u8 ar_tip[4];
};

SEC("tcx/ingress")
int arp_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth_ipv4 *arp = (void *)(eth + 1);
	__u32 op, sender;
	__u64 *cnt;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;
	if ((void *)(arp + 1) > data_end)
		return TC_ACT_SHOT;

	op = bpf_ntohs(arp->hdr.ar_op);
	if (op != ARPOP_REQUEST && op != ARPOP_REPLY)
		op = 0;
	cnt = bpf_map_lookup_elem(&arp_ops, &op);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);

	sender = (__u32)arp->ar_sip[0] << 24 | (__u32)arp->ar_sip[1] << 16 |
		 (__u32)arp->ar_sip[2] << 8 | arp->ar_sip[3];
	if (!sender)
		return TC_ACT_OK;
	if (!bpf_map_lookup_elem(&known_senders, &sender)) {
		__sync_fetch_and_add(&arp_rejected, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
