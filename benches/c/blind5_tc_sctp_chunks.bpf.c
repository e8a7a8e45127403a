// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_tc_sctp_chunks.ks: tc ingress walk of the chunks of
 * unfragmented IPv4 SCTP packets (at most 16, each padded to 4 bytes, within the IP total
 * length). Chunk types 0..15 are counted per slot in a per-CPU array, others in slot 16; a chunk
 * shorter than 4 bytes or past the IP payload drops the packet as malformed. ABORT-carrying
 * packets are dropped when sctp_guard.drop_abort is set; a first chunk INIT sets skb->mark.
 * .bss: sctp_packets@0, malformed@8, aborts_dropped@16. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_SCTP 132
#define MAX_CHUNKS 16
#define OTHER_TYPES 16
#define CHUNK_INIT 1
#define CHUNK_ABORT 6
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct sctp_guard_config {
	__u32 init_mark;
	bool drop_abort;
};

struct ChunkHdr {
	__u8 type;
	__u8 flags;
	__u16 length;
};

struct sctp_guard_config sctp_guard SEC(".data.sctp_guard") = {
	.init_mark = 0x5c7,
	.drop_abort = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 17);
	__type(key, __u32);
	__type(value, __u64);
} chunk_types SEC(".maps");

__u64 sctp_packets = 0;
__u64 malformed = 0;
__u64 aborts_dropped = 0;

SEC("tcx/ingress")
int sctp_chunks(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	bool first_init = false, saw_abort = false;
	__u32 ihl, ip_end, off;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_SCTP)
		return TC_ACT_OK;
	if (ip->frag_off & bpf_htons(0x3fff))
		return TC_ACT_OK;
	ihl = ip->ihl * 4;
	ip_end = sizeof(struct ethhdr) + bpf_ntohs(ip->tot_len);
	off = sizeof(struct ethhdr) + ihl + 12;
	if (ihl < 20 || off > ip_end || data + off > data_end) {
		__sync_fetch_and_add(&malformed, 1);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&sctp_packets, 1);

	for (__u32 i = 0; i < MAX_CHUNKS; i++) {
		struct ChunkHdr *ch = data + off;
		__u32 len, slot;
		__u64 *cnt;

		/* no packet reaches past 64 KiB: keeps the offset in the verifier's range */
		if (off > 0xfffb || off + 4 > ip_end || (void *)(ch + 1) > data_end)
			break;
		len = bpf_ntohs(ch->length);
		if (len < 4 || off + len > ip_end) {
			__sync_fetch_and_add(&malformed, 1);
			return TC_ACT_SHOT;
		}
		slot = ch->type < 16 ? ch->type : OTHER_TYPES;
		cnt = bpf_map_lookup_elem(&chunk_types, &slot);
		if (cnt)
			*cnt += 1;
		if (ch->type == CHUNK_ABORT)
			saw_abort = true;
		if (i == 0 && ch->type == CHUNK_INIT)
			first_init = true;
		off += (len + 3) & ~3u;
	}

	if (saw_abort && sctp_guard.drop_abort) {
		__sync_fetch_and_add(&aborts_dropped, 1);
		return TC_ACT_SHOT;
	}
	if (first_init)
		skb->mark = sctp_guard.init_mark;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
