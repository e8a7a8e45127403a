// SPDX-License-Identifier: GPL-2.0
// blind16_xdp_memcached_cmds.bpf.c — C twin of blind16_xdp_memcached_cmds.ks:
// classify memcached text-protocol commands (TCP/UDP 11211) into per-CPU counters,
// drop flush_all from sources not in the allow-list, count malformed requests.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define MEMCACHED_PORT	11211
#define WORD_SCAN	12

enum {
	CMD_GET, CMD_GETS, CMD_SET, CMD_ADD, CMD_DELETE,
	CMD_INCR, CMD_DECR, CMD_STATS, CMD_FLUSH_ALL, CMD_OTHER,
	CMD_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CMD_MAX);
} cmd_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} flush_allow SEC(".maps");

__u64 malformed = 0;
__u64 flush_denied = 0;

/* The command word, zero-padded: compared as little-endian integer words. */
union word {
	char c[16];
	__u32 d[4];
	__u64 q[2];
};

#define C4(a, b, c, d)	((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)
#define C8(a, b, c, d, e, f, g, h) ((__u64)C4(a, b, c, d) | (__u64)C4(e, f, g, h) << 32)

static __always_inline __u32 classify(const union word *w, __u32 len)
{
	switch (len) {
	case 3:
		if (w->d[0] == C4('g', 'e', 't', 0))
			return CMD_GET;
		if (w->d[0] == C4('s', 'e', 't', 0))
			return CMD_SET;
		if (w->d[0] == C4('a', 'd', 'd', 0))
			return CMD_ADD;
		break;
	case 4:
		if (w->d[0] == C4('g', 'e', 't', 's'))
			return CMD_GETS;
		if (w->d[0] == C4('i', 'n', 'c', 'r'))
			return CMD_INCR;
		if (w->d[0] == C4('d', 'e', 'c', 'r'))
			return CMD_DECR;
		break;
	case 5:
		if (w->q[0] == C8('s', 't', 'a', 't', 's', 0, 0, 0))
			return CMD_STATS;
		break;
	case 6:
		if (w->q[0] == C8('d', 'e', 'l', 'e', 't', 'e', 0, 0))
			return CMD_DELETE;
		break;
	case 9:
		if (w->q[0] == C8('f', 'l', 'u', 's', 'h', '_', 'a', 'l') && w->c[8] == 'l')
			return CMD_FLUSH_ALL;
		break;
	}
	return CMD_OTHER;
}

SEC("xdp")
int memcached_cmds(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4)
		return XDP_PASS;
	__u32 hl = ip->ihl * 4;
	if (hl < 20)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;

	__u32 frame_end = 14 + bpf_ntohs(ip->tot_len);
	__u32 l4 = 14 + hl;
	__u32 start;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		if (tcp->dest != bpf_htons(MEMCACHED_PORT))
			return XDP_PASS;
		__u32 thl = tcp->doff * 4;
		if (thl < 20)
			return XDP_PASS;
		start = l4 + thl;
		if (frame_end <= start)
			return XDP_PASS;	/* no payload */
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = data + l4;

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		if (udp->dest != bpf_htons(MEMCACHED_PORT))
			return XDP_PASS;
		start = l4 + 16;	/* UDP header + memcached frame header */
		if (frame_end <= start) {
			__sync_fetch_and_add(&malformed, 1);
			return XDP_PASS;
		}
	} else {
		return XDP_PASS;
	}

	__u32 avail = frame_end - start;
	if (avail > WORD_SCAN)
		avail = WORD_SCAN;

	union word w = {};
	__u32 len = WORD_SCAN;	/* no delimiter found */
	const char *payload = data + start;

	for (__u32 i = 0; i < WORD_SCAN; i++) {
		if (i >= avail || (void *)(payload + i + 1) > data_end)
			break;
		char c = payload[i];
		if (c == ' ' || c == '\r') {
			len = i;
			break;
		}
		w.c[i] = c;
	}
	if (len == WORD_SCAN) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_PASS;
	}

	__u32 cmd = classify(&w, len);
	__u64 *cnt = bpf_map_lookup_elem(&cmd_stats, &cmd);
	if (cnt)
		*cnt += 1;

	if (cmd == CMD_FLUSH_ALL) {
		__u32 src = ip->saddr;
		__u64 *allowed = bpf_map_lookup_elem(&flush_allow, &src);

		if (!allowed) {
			__sync_fetch_and_add(&flush_denied, 1);
			return XDP_DROP;
		}
		__sync_fetch_and_add(allowed, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
