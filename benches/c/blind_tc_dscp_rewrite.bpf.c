// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_tc_dscp_rewrite.ks: tc ingress re-marking of
 * IPv4 TCP/UDP by destination port, keeping the ECN bits, with an incremental IPv4 header
 * checksum update (RFC 1624) and bytes counted per DSCP. Later fragments pass unchanged; an
 * IHL below 5 is dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define IP_OFFSET 0x1FFF

#define DSCP_BE 0
#define DSCP_AF11 10
#define DSCP_CS2 16
#define DSCP_AF21 18
#define DSCP_CS3 24
#define DSCP_EF 46

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} dscp_bytes SEC(".maps");

__u64 remarked = 0;

static __always_inline __u8 dscp_for_port(__u32 port)
{
	if (port >= 16384 && port <= 32767)
		return DSCP_EF;		/* RTP media */
	if (port == 5060 || port == 5061)
		return DSCP_CS3;	/* SIP */
	if (port >= 8000 && port < 9000)
		return DSCP_AF11;
	switch (port) {
	case 22:
		return DSCP_CS2;
	case 53:
		return DSCP_AF21;
	case 80:
	case 443:
		return DSCP_AF11;
	default:
		return DSCP_BE;
	}
}

/* RFC 1624 eqn. 3 on raw (network order) 16-bit words: the one's complement sum does not
 * depend on the byte order, so no swapping is needed. */
static __always_inline void csum_replace2(__u16 *check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~*check + (__u16)~old + (__u32)new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*check = ~sum;
}

SEC("tcx/ingress")
int dscp_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *l4, dscp, old_tos, new_tos;
	__u32 key, dport;
	__u64 *bytes;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl < 5)
		return TC_ACT_SHOT;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return TC_ACT_OK;	/* a later fragment: no ports */
	l4 = (void *)ip + ip->ihl * 4;
	if ((void *)(l4 + 4) > data_end)
		return TC_ACT_OK;
	dport = bpf_ntohs(*(__be16 *)(l4 + 2));
	dscp = dscp_for_port(dport);

	old_tos = ip->tos;
	new_tos = (dscp << 2) | (old_tos & 0x03);
	if (new_tos != old_tos) {
		/* the TOS byte is the low half of the header's first 16-bit word */
		__u16 hi = *(__u8 *)ip << 8;

		csum_replace2(&ip->check, bpf_htons(hi | old_tos), bpf_htons(hi | new_tos));
		ip->tos = new_tos;
		__sync_fetch_and_add(&remarked, 1);
	}

	key = dscp;
	bytes = bpf_map_lookup_elem(&dscp_bytes, &key);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
