// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind7_xdp_syn_limit.ks: per-source SYN rate limit. Each IPv4 source
 * of connection requests has an LRU entry {window_start_ns, syns, dropped}; windows are aligned
 * to the configured length, at most max_syns SYNs pass per window and the rest are counted and
 * (with enforce) dropped. The .ks throwing parser becomes parse_syn() returning the reason code;
 * the deferred SYN count is done once the frame is known to be a SYN. The config is read once
 * (ksc may read it per use; same values). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define SKIP_SHORT 1
#define SKIP_NOT_IPV4 2
#define SKIP_NOT_TCP 3
#define SKIP_NOT_SYN 4
#define SKIP_BAD_HEADER 5

enum RateVerdict {
	NewSource = 0,
	WithinLimit = 1,
	WindowReset = 2,
	OverLimit = 3,
};

struct synlimit_config {
	__u64 window_ns;
	__u32 max_syns;
	bool enforce;
};

struct SrcWindow {
	__u64 window_start_ns;
	__u32 syns;
	__u32 dropped;
};

struct synlimit_config synlimit SEC(".data.synlimit") = {
	.window_ns = 1000000000,
	.max_syns = 20,
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct SrcWindow);
} src_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} skipped SEC(".maps");

__u64 syns_seen = 0;

static __always_inline void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* 0 and the source address for a connection request, else the SKIP_* reason */
static __always_inline __u32 parse_syn(struct xdp_md *ctx, __u32 *src)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return SKIP_SHORT;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return SKIP_NOT_IPV4;
	if ((void *)(ip + 1) > data_end)
		return SKIP_SHORT;
	if (ip->version != 4 || ip->ihl < 5)
		return SKIP_BAD_HEADER;
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
		return SKIP_NOT_TCP;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return SKIP_SHORT;
	if (tcp->doff < 5)
		return SKIP_BAD_HEADER;
	if (!tcp->syn || tcp->ack)
		return SKIP_NOT_SYN;
	*src = ip->saddr;
	return 0;
}

SEC("xdp")
int syn_limit(struct xdp_md *ctx)
{
	struct SrcWindow *w;
	__u64 window, start = 0, now;
	__u32 src = 0, max_syns, reason;
	enum RateVerdict verdict;
	bool enforce;

	reason = parse_syn(ctx, &src);
	if (reason) {
		count(&skipped, reason);
		return (reason == SKIP_SHORT || reason == SKIP_BAD_HEADER) ? XDP_DROP : XDP_PASS;
	}
	__sync_fetch_and_add(&syns_seen, 1);

	window = synlimit.window_ns;
	max_syns = synlimit.max_syns;
	enforce = synlimit.enforce;
	now = bpf_ktime_get_ns();
	if (window)
		start = now / window * window;

	w = bpf_map_lookup_elem(&src_windows, &src);
	if (!w) {
		struct SrcWindow init = { .window_start_ns = start, .syns = 1, .dropped = 0 };

		bpf_map_update_elem(&src_windows, &src, &init, BPF_ANY);
		verdict = NewSource;
	} else if (w->window_start_ns != start) {
		w->window_start_ns = start;
		w->syns = 1;
		verdict = WindowReset;
	} else if (w->syns >= max_syns) {
		w->dropped += 1;
		verdict = OverLimit;
	} else {
		w->syns += 1;
		verdict = WithinLimit;
	}
	count(&verdicts, verdict);
	if (verdict == OverLimit && enforce)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
