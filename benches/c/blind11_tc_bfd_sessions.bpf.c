// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_tc_bfd_sessions.ks: single-hop BFD session tracking on tc
 * ingress. IPv4/UDP to the configured port (3784) is validated (TTL >= min_ttl, UDP length
 * within the frame, version 1, 24 <= length <= UDP payload, detect mult != 0, no M bit,
 * My Discriminator != 0, Your Discriminator != 0 in Init/Up); invalid packets are counted per
 * reason and shot (unless drop_invalid is off; an unknown session passes). Sessions keyed by
 * {peer, peer's discriminator} in an LRU hash run the RFC 5880 state machine; a packet with
 * Your Discriminator 0 learns a session in Down. Per local state a per-CPU {packets, entered}.
 * The .ks throwing parser becomes parse_bfd() returning the reason; the deferred bfd_packets
 * count is done where the defer is registered. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define BFD_LEN 24
#define BFD_FLAG_POLL 0x20
#define BFD_FLAG_MULTIPOINT 0x01

enum BfdState {
	BFD_ADMIN_DOWN = 0,
	BFD_DOWN = 1,
	BFD_INIT = 2,
	BFD_UP = 3,
};

enum {
	R_UDP_LENGTH = 1,
	R_BAD_TTL = 2,
	R_TRUNCATED = 3,
	R_BAD_VERSION = 4,
	R_BAD_LENGTH = 5,
	R_ZERO_MULT = 6,
	R_MULTIPOINT = 7,
	R_ZERO_DISC = 8,
	R_NO_YOUR_DISC = 9,
	R_UNKNOWN_SESSION = 10,
};

struct bfd_config {
	__u16 port;
	__u8 min_ttl;
	bool learn;
	bool drop_invalid;
};

struct bfd_config bfd SEC(".data.bfd") = {
	.port = 3784,
	.min_ttl = 255,
	.learn = true,
	.drop_invalid = true,
};

struct BfdCtrl {
	__u8 vers_diag;
	__u8 sta_flags;
	__u8 detect_mult;
	__u8 length;
	__u32 my_disc;
	__u32 your_disc;
	__be32 desired_min_tx;
	__be32 required_min_rx;
	__be32 required_min_echo_rx;
};

struct bfd_info {
	__u32 remote_disc;
	__u32 your_disc;
	__u32 min_rx;
	__u32 state;
	__u8 diag;
	__u8 mult;
	bool poll;
};

struct SessKey {
	__u32 peer;
	__u32 disc;
};

struct Session {
	__u64 packets;
	__u32 state;
	__u32 remote_state;
	__u32 flaps;
	__u32 polls;
	__u32 remote_min_rx;
	__u8 detect_mult;
	__u8 last_diag;
};

struct StateStats {
	__u64 packets;
	__u64 entered;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct SessKey);
	__type(value, struct Session);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct StateStats);
} state_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 11);
	__type(key, __u32);
	__type(value, __u64);
} invalid SEC(".maps");

__u64 bfd_packets = 0;
__u64 not_bfd = 0;
__u64 learned = 0;

/* 0 with *info filled, or the reason the control packet is invalid */
static __always_inline int parse_bfd(void *data, void *data_end, __u32 off, __u32 payload,
				     struct bfd_info *info)
{
	struct BfdCtrl *c = data + off;
	__u32 state;

	if ((void *)(c + 1) > data_end)
		return R_TRUNCATED;
	if ((c->vers_diag >> 5) != 1)
		return R_BAD_VERSION;
	if (c->length < BFD_LEN || c->length > payload)
		return R_BAD_LENGTH;
	if (c->detect_mult == 0)
		return R_ZERO_MULT;
	if (c->sta_flags & BFD_FLAG_MULTIPOINT)
		return R_MULTIPOINT;
	if (c->my_disc == 0)
		return R_ZERO_DISC;
	state = c->sta_flags >> 6;
	if (c->your_disc == 0 && (state == BFD_INIT || state == BFD_UP))
		return R_NO_YOUR_DISC;
	info->remote_disc = c->my_disc;
	info->your_disc = c->your_disc;
	info->min_rx = bpf_ntohl(c->required_min_rx);
	info->state = state;
	info->diag = c->vers_diag & 0x1f;
	info->mult = c->detect_mult;
	info->poll = (c->sta_flags & BFD_FLAG_POLL) != 0;
	return 0;
}

/* RFC 5880 6.8.6 */
static __always_inline __u32 next_state(__u32 mine, __u32 remote)
{
	switch (mine) {
	case BFD_DOWN:
		if (remote == BFD_DOWN)
			return BFD_INIT;
		if (remote == BFD_INIT)
			return BFD_UP;
		return BFD_DOWN;
	case BFD_INIT:
		if (remote == BFD_ADMIN_DOWN)
			return BFD_DOWN;
		if (remote == BFD_DOWN)
			return BFD_INIT;
		return BFD_UP;
	case BFD_UP:
		if (remote == BFD_ADMIN_DOWN || remote == BFD_DOWN)
			return BFD_DOWN;
		return BFD_UP;
	default:
		return mine;
	}
}

SEC("tcx/ingress")
int bfd_sessions(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct Session *s, fresh_s;
	struct StateStats *ss;
	struct bfd_info info;
	struct udphdr *udp;
	struct SessKey key;
	__u32 l4, udp_len, reason, cur, next;
	bool fresh = false;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&not_bfd, 1);
		return TC_ACT_OK;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl < 5) {
		__sync_fetch_and_add(&not_bfd, 1);
		return TC_ACT_OK;
	}
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end) {
		__sync_fetch_and_add(&not_bfd, 1);
		return TC_ACT_OK;
	}
	if (udp->dest != bpf_htons(bfd.port)) {
		__sync_fetch_and_add(&not_bfd, 1);
		return TC_ACT_OK;
	}
	/* the .ks defers this to every exit from here on */
	__sync_fetch_and_add(&bfd_packets, 1);

	if (ip->ttl < bfd.min_ttl) {
		reason = R_BAD_TTL;
		goto bad;
	}
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < 8 || (__u64)(l4 + udp_len) > (__u64)(data_end - data)) {
		reason = R_UDP_LENGTH;
		goto bad;
	}
	reason = parse_bfd(data, data_end, l4 + 8, udp_len - 8, &info);
	if (reason)
		goto bad;

	key.peer = ip->saddr;
	key.disc = info.remote_disc;
	s = bpf_map_lookup_elem(&sessions, &key);
	if (!s) {
		if (!bfd.learn || info.your_disc != 0) {
			reason = R_UNKNOWN_SESSION;
			goto bad;
		}
		__builtin_memset(&fresh_s, 0, sizeof(fresh_s));
		fresh_s.state = BFD_DOWN;
		fresh_s.remote_state = BFD_DOWN;
		s = &fresh_s;
		fresh = true;
	}

	cur = s->state;
	ss = bpf_map_lookup_elem(&state_stats, &cur);
	if (ss)
		ss->packets += 1;
	next = next_state(cur, info.state);
	if (next != cur) {
		if (cur == BFD_UP)
			s->flaps += 1;
		ss = bpf_map_lookup_elem(&state_stats, &next);
		if (ss)
			ss->entered += 1;
		s->state = next;
	}
	s->packets += 1;
	s->remote_state = info.state;
	s->last_diag = info.diag;
	s->detect_mult = info.mult;
	s->remote_min_rx = info.min_rx;
	if (info.poll)
		s->polls += 1;
	if (fresh) {
		bpf_map_update_elem(&sessions, &key, &fresh_s, BPF_ANY);
		__sync_fetch_and_add(&learned, 1);
	}
	return TC_ACT_OK;

bad:
	cnt = bpf_map_lookup_elem(&invalid, &reason);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (reason == R_UNKNOWN_SESSION || !bfd.drop_invalid)
		return TC_ACT_OK;
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
