// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_icmp_ratelimit.ks: per-source ICMP
 * echo-request rate limiting with a token bucket per IPv4 source in an LRU hash. The
 * bucket holds at most `burst` tokens and refills at `refill_per_sec`; a new source starts
 * with a full bucket (nothing when burst is 0). Per-CPU counters of passed ICMP, limited
 * echo requests and non-ICMP packets. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ICMP_ECHO_REQUEST 8
#define NSEC_PER_SEC 1000000000ULL

enum { NOT_ICMP = 0, OTHER_ICMP = 1, ECHO_REQUEST = 2 };
enum { STAT_PASSED = 0, STAT_LIMITED = 1, STAT_NON_ICMP = 2, STAT_MAX };

/* config ratelimit { burst: u32 = 20, refill_per_sec: u32 = 5 } */
struct ratelimit_config {
	__u32 burst;
	__u32 refill_per_sec;
};

/* 16 bytes, 4 of them padding after tokens */
struct Bucket {
	__u32 tokens;
	__u64 last_ns;		/* when tokens were last added */
};

struct ratelimit_config ratelimit SEC(".data.ratelimit") = {
	.burst = 20,
	.refill_per_sec = 5,
};

/* key: IPv4 source address (network byte order) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct Bucket);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);

	if (v)
		*v += 1;	/* per-CPU slot: no other CPU writes it */
}

/* Classifies the frame; for ICMP, *saddr is the IPv4 source. */
static __always_inline int parse_ping(struct xdp_md *ctx, __u32 *saddr)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp;

	if ((void *)(ip + 1) > data_end)
		return NOT_ICMP;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_ICMP)
		return NOT_ICMP;
	*saddr = ip->saddr;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return OTHER_ICMP;	/* too short to be an echo request */
	if (icmp->type != ICMP_ECHO_REQUEST || icmp->code != 0)
		return OTHER_ICMP;
	return ECHO_REQUEST;
}

/* whole tokens earned in elapsed_ns at rate tokens per second */
static __always_inline __u64 earned_tokens(__u64 elapsed_ns, __u32 rate)
{
	__u64 ns_per_token;

	if (!rate)
		return 0;
	ns_per_token = NSEC_PER_SEC / rate;
	if (!ns_per_token)
		ns_per_token = 1;
	return elapsed_ns / ns_per_token;
}

SEC("xdp")
int ping_limiter(struct xdp_md *ctx)
{
	struct Bucket *b;
	__u32 saddr = 0, burst, rate;
	__u64 now, earned;
	int kind;

	kind = parse_ping(ctx, &saddr);
	if (kind == NOT_ICMP) {
		count(STAT_NON_ICMP);
		return XDP_PASS;
	}
	if (kind == OTHER_ICMP) {
		count(STAT_PASSED);
		return XDP_PASS;
	}

	now = bpf_ktime_get_ns();
	burst = ratelimit.burst;
	rate = ratelimit.refill_per_sec;

	b = bpf_map_lookup_elem(&buckets, &saddr);
	if (b) {
		earned = earned_tokens(now - b->last_ns, rate);
		if (earned) {
			__u64 total = b->tokens + earned;

			if (total > burst)
				total = burst;
			b->tokens = total;
			b->last_ns = now;
		}
		if (!b->tokens) {
			count(STAT_LIMITED);
			return XDP_DROP;
		}
		b->tokens--;
		count(STAT_PASSED);
		return XDP_PASS;
	}

	/* first echo request of this source: a full bucket, minus this packet's token */
	if (!burst) {
		count(STAT_LIMITED);
		return XDP_DROP;
	}
	{
		struct Bucket fresh;

		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.tokens = burst - 1;
		fresh.last_ns = now;
		bpf_map_update_elem(&buckets, &saddr, &fresh, BPF_ANY);
	}
	count(STAT_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
