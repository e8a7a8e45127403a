// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_xdp_esp_replay.ks: IPsec ESP/AH anti-replay accounting.
 * IPv4 ESP (50) and AH (51) packets: the source is looked up in an LPM table of peer prefixes
 * (Accept / Monitor / Reject; absent is refused while require_peer is on), the SPI and sequence
 * number are read from ESP or from AH (length field >= 4, whole header in the frame), and the
 * (peer, SPI) SA in an LRU hash keeps {packets, bytes, 64-bit window, last seq, replays}.
 * Refusals are counted per reason in a per-CPU array and dropped unless the peer is Monitor or
 * enforcement is off. The .ks throwing helpers become functions returning the reason and a
 * jump to one refusal block; the deferred `inspected` count is done where the defer is
 * registered. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define WINDOW_BITS 64
#define AH_MIN_LEN 4

enum {
	R_IP_MALFORMED = 1,
	R_HEADER_SHORT = 2,
	R_AH_LENGTH = 3,
	R_UNKNOWN_PEER = 4,
	R_REJECTED_PEER = 5,
	R_SEQ_ZERO = 6,
	R_TOO_OLD = 7,
	R_REPLAY = 8,
};

enum {
	PEER_ACCEPT = 0,
	PEER_MONITOR = 1,
	PEER_REJECT = 2,
};

enum {
	T_NOT_IPV4 = 0,
	T_NOT_IPSEC = 1,
	T_FRAGMENT = 2,
	T_ACCEPTED = 3,
	T_NEW_SA = 4,
};

struct ipsec_config {
	__u32 replay_window;
	bool require_peer;
	bool enforce;
};

struct ipsec_config ipsec SEC(".data.ipsec") = {
	.replay_window = 32,
	.require_peer = true,
	.enforce = true,
};

struct EspHdr {
	__be32 spi;
	__be32 seq;
};

struct AhHdr {
	__u8 next_header;
	__u8 payload_len;
	__u16 reserved;
	__be32 spi;
	__be32 seq;
};

struct PeerKey {
	__u32 prefixlen;
	__u32 addr;
};

struct SaKey {
	__u32 peer;
	__u32 spi;
};

struct SaState {
	__u64 packets;
	__u64 bytes;
	__u64 window;
	__u32 last_seq;
	__u32 replays;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct PeerKey);
	__type(value, __u32);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct SaKey);
	__type(value, struct SaState);
} sa_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 9);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} traffic SEC(".maps");

__u64 inspected = 0;

static __always_inline void count_shared(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&traffic, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* 0 with spi/seq filled, or the reason the header cannot be read */
static __always_inline int parse_sa(void *data, void *data_end, __u32 off, __u8 proto,
				    __u32 *spi, __u32 *seq)
{
	if (proto == IPPROTO_ESP_) {
		struct EspHdr *esp = data + off;

		if ((void *)(esp + 1) > data_end)
			return R_HEADER_SHORT;
		*spi = esp->spi;
		*seq = bpf_ntohl(esp->seq);
		return 0;
	}

	struct AhHdr *ah = data + off;

	if ((void *)(ah + 1) > data_end)
		return R_HEADER_SHORT;
	if (ah->payload_len < AH_MIN_LEN)
		return R_AH_LENGTH;
	if ((void *)ah + ((__u32)ah->payload_len + 2) * 4 > data_end)
		return R_HEADER_SHORT;
	*spi = ah->spi;
	*seq = bpf_ntohl(ah->seq);
	return 0;
}

/* slides the window over seq (0), or returns the reason seq is refused */
static __always_inline int slide_window(__u64 *bitmap, __u32 *last, __u32 seq)
{
	__u32 ahead, behind;
	__u64 bit;

	if (seq == 0)
		return R_SEQ_ZERO;
	if (seq > *last) {
		ahead = seq - *last;
		if (ahead >= WINDOW_BITS)
			*bitmap = 1;
		else
			*bitmap = (*bitmap << ahead) | 1;
		*last = seq;
		return 0;
	}
	behind = *last - seq;
	if (behind >= ipsec.replay_window || behind >= WINDOW_BITS)
		return R_TOO_OLD;
	bit = 1ULL << behind;
	if (*bitmap & bit)
		return R_REPLAY;
	*bitmap |= bit;
	return 0;
}

SEC("xdp")
int esp_replay(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct SaKey key = {};
	struct PeerKey pk;
	struct SaState *st;
	__u32 *policy, spi, seq, reason, k;
	bool monitor = false;
	__u64 *cnt, len;

	if ((void *)(eth + 1) > data_end) {
		count_shared(T_NOT_IPV4);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count_shared(T_NOT_IPV4);
		return XDP_PASS;
	}
	/* the .ks defers this to every exit from here on */
	__sync_fetch_and_add(&inspected, 1);

	if ((void *)(ip + 1) > data_end) {
		reason = R_IP_MALFORMED;
		goto refuse;
	}
	if (ip->version != 4 || ip->ihl < 5) {
		reason = R_IP_MALFORMED;
		goto refuse;
	}
	if (ip->protocol != IPPROTO_ESP_ && ip->protocol != IPPROTO_AH_) {
		count_shared(T_NOT_IPSEC);
		return XDP_PASS;
	}
	if (ip->frag_off & bpf_htons(0x3fff)) {
		count_shared(T_FRAGMENT);
		return XDP_PASS;
	}

	pk.prefixlen = 32;
	pk.addr = ip->saddr;
	policy = bpf_map_lookup_elem(&peers, &pk);
	if (!policy) {
		if (ipsec.require_peer) {
			reason = R_UNKNOWN_PEER;
			goto refuse;
		}
	} else if (*policy == PEER_REJECT) {
		reason = R_REJECTED_PEER;
		goto refuse;
	}
	monitor = policy && *policy == PEER_MONITOR;

	reason = parse_sa(data, data_end, sizeof(*eth) + ip->ihl * 4, ip->protocol, &spi, &seq);
	if (reason)
		goto refuse;
	key.peer = ip->saddr;
	key.spi = spi;
	len = data_end - data;
	st = bpf_map_lookup_elem(&sa_stats, &key);
	if (st) {
		__u64 bitmap = st->window;
		__u32 last = st->last_seq;

		reason = slide_window(&bitmap, &last, seq);
		if (reason)
			goto refuse;
		st->packets += 1;
		st->bytes += len;
		st->window = bitmap;
		st->last_seq = last;
	} else {
		struct SaState init = {
			.packets = 1,
			.bytes = len,
			.window = 1,
			.last_seq = seq,
			.replays = 0,
		};

		if (seq == 0) {
			reason = R_SEQ_ZERO;
			goto refuse;
		}
		bpf_map_update_elem(&sa_stats, &key, &init, BPF_ANY);
		count_shared(T_NEW_SA);
	}
	count_shared(T_ACCEPTED);
	return XDP_PASS;

refuse:
	if (reason == R_TOO_OLD || reason == R_REPLAY) {
		st = bpf_map_lookup_elem(&sa_stats, &key);
		if (st)
			st->replays += 1;
	}
	k = reason;
	cnt = bpf_map_lookup_elem(&drops, &k);
	if (cnt)
		*cnt += 1;
	return (monitor || !ipsec.enforce) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
