// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind6_tc_payload_match.ks: tc ingress search of the first
 * min(payload, 32) bytes of IPv4 UDP payloads (copied with bpf_skb_load_bytes) for a signature
 * of up to 8 bytes from the config; a match is counted per destination port, reported on a
 * ring buffer with the 5-tuple and offset, and dropped when the config says block. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_UDP 17
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define MAX_SCAN 32
#define MAX_SIG 8

struct signature_config {
	__u8 pattern[MAX_SIG];
	__u8 pattern_len;
	bool block;
};

struct MatchEvent {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 offset;
};

struct signature_config signature SEC(".data.signature") = {
	.pattern = { 0x4d, 0x2d, 0x53, 0x45, 0x41, 0x52, 0x43, 0x48 },
	.pattern_len = 8,
	.block = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} port_matches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} match_events SEC(".maps");

/* .bss, in declaration order */
__u64 payloads_scanned = 0;
__u64 load_failures = 0;
__u64 blocked = 0;
__u64 events_lost = 0;

SEC("tcx/ingress")
int payload_match(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct MatchEvent *ev;
	struct udphdr *udp;
	__u32 ihl, udp_len, n, sig_len, pos, j, at = 0;
	__u64 *cnt, one = 1;
	bool found = false;
	__u16 dport;
	__u8 buf[MAX_SCAN];

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1FFF)))
		return TC_ACT_OK;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return TC_ACT_OK;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len <= sizeof(*udp))
		return TC_ACT_OK;	/* no payload */

	/* Search at most MAX_SCAN bytes, and never more than the datagram holds. */
	n = udp_len - sizeof(*udp);
	if (n > MAX_SCAN)
		n = MAX_SCAN;
	sig_len = signature.pattern_len;
	if (sig_len == 0 || sig_len > MAX_SIG || sig_len > n)
		return TC_ACT_OK;	/* no signature set, or it cannot fit */
	if (bpf_skb_load_bytes(skb, sizeof(*eth) + ihl + sizeof(*udp), buf, n)) {
		/* the UDP length claims more than the skb has */
		__sync_fetch_and_add(&load_failures, 1);
		return TC_ACT_OK;
	}
	__sync_fetch_and_add(&payloads_scanned, 1);

	for (pos = 0; pos < MAX_SCAN; pos++) {
		if (pos + sig_len > n)
			break;
		for (j = 0; j < MAX_SIG; j++) {
			if (j >= sig_len)
				break;
			/* pos + j < n <= MAX_SCAN; the mask tells the verifier */
			if (buf[(pos + j) & (MAX_SCAN - 1)] != signature.pattern[j])
				break;
		}
		if (j == sig_len) {
			found = true;
			at = pos;
			break;
		}
	}
	if (!found)
		return TC_ACT_OK;

	dport = bpf_ntohs(udp->dest);
	cnt = bpf_map_lookup_elem(&port_matches, &dport);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else if (bpf_map_update_elem(&port_matches, &dport, &one, BPF_NOEXIST)) {
		/* another CPU created it first */
		cnt = bpf_map_lookup_elem(&port_matches, &dport);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	ev = bpf_ringbuf_reserve(&match_events, sizeof(*ev), 0);
	if (ev) {
		ev->saddr = ip->saddr;
		ev->daddr = ip->daddr;
		ev->sport = bpf_ntohs(udp->source);
		ev->dport = dport;
		ev->protocol = IPPROTO_UDP;
		ev->offset = at;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&events_lost, 1);
	}
	if (signature.block) {
		__sync_fetch_and_add(&blocked, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
