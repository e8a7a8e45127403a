// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_tc_tail_ip_scrub.ks: an IPv4 scrubber on tc ingress in three
 * tail-called stages. scrub_parse finds IPv4 (after at most one 802.1Q tag), walks the options
 * (counted per option number, noted in a mask) and leaves the header's place and fields in a
 * per-CPU scratch entry; scrub_policy drops options in the drop mask, strips a header's options
 * when one is in the strip mask (trusted sources exempt for the options they may send) and
 * raises a TTL below min_ttl; scrub_rewrite copies the options out with bpf_skb_load_bytes,
 * turns every byte into a no-op (as netfilter's IPV4OPTSSTRIP), updates the checksum with
 * bpf_csum_diff + bpf_l3_csum_replace and stores them back, then writes a new TTL with its own
 * checksum update. Malformed headers are dropped, truncated ones passed. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define IPOPT_EOL 0
#define IPOPT_NOP 1
#define MAX_OPT_LEN 40

enum { V_TRUNCATED, V_MALFORMED, V_DROPPED, V_CLEAN, V_SCRUBBED, V_REWRITE_FAILED };
enum { S_PARSE, S_POLICY, S_REWRITE, S_MAX };

/* prog_array slots, as ksc assigns them: tail-call targets in order of first appearance */
enum { PROG_POLICY = 0, PROG_REWRITE = 1 };

struct scrub_config {
	__u32 strip_mask;
	__u32 drop_mask;
	__u8 min_ttl;
};

struct Scratch {
	__u32 l3_off;
	__u32 saddr;
	__u32 seen;
	__u32 strip;
	__u32 count;
	__u8 opt_len;
	__u8 ttl;
	__u8 protocol;
	__u8 new_ttl;
};

struct scrub_config scrub SEC(".data.scrub") = {
	.strip_mask = 0x80,
	.drop_mask = 0x208,
	.min_ttl = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct Scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} trusted_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} option_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stage_runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

/* .bss, in this order: options_stripped@0, ttl_raised@8 */
__u64 options_stripped = 0;
__u64 ttl_raised = 0;

static __always_inline void percpu_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

static __always_inline void count_verdict(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&verdicts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tcx/ingress")
int scrub_parse(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = sizeof(*eth), hlen, optlen, off = 0, seen = 0, count = 0, zero = 0;
	struct Scratch *s;
	struct iphdr *ip;
	__be16 proto;
	int step;

	percpu_inc(&stage_runs, S_PARSE);
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end) {
			count_verdict(V_TRUNCATED);
			return TC_ACT_OK;
		}
		proto = vh->h_vlan_encapsulated_proto;
		l3 += sizeof(*vh);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = data + l3;
	if ((void *)(ip + 1) > data_end) {
		count_verdict(V_TRUNCATED);
		return TC_ACT_OK;
	}
	if (ip->version != 4)
		return TC_ACT_OK;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip)) {
		count_verdict(V_MALFORMED);
		return TC_ACT_SHOT;
	}
	if ((void *)ip + hlen > data_end) {
		count_verdict(V_TRUNCATED);
		return TC_ACT_OK;
	}

	/* The walk keeps an offset into the options and forms each option's pointer from it:
	 * a pointer stepped by run-time lengths gave the verifier a new state for every mix of
	 * steps (over its 1M-instruction limit). */
	optlen = hlen - sizeof(*ip);
	for (step = 0; step < MAX_OPT_LEN; step++) {	/* each option takes at least a byte */
		__u8 *opt, kind, len;

		if (off >= optlen)
			break;
		opt = (__u8 *)(ip + 1) + (off & (64 - 1));
		/* within the header, which ends before data_end; for the verifier */
		if ((void *)(opt + 1) > data_end)
			break;
		kind = opt[0];
		if (kind == IPOPT_EOL)
			break;
		if (kind == IPOPT_NOP) {
			off++;
			continue;
		}
		if (off + 2 > optlen) {
			count_verdict(V_MALFORMED);
			return TC_ACT_SHOT;
		}
		if ((void *)(opt + 2) > data_end)
			break;
		len = opt[1];
		if (len < 2 || off + len > optlen) {
			count_verdict(V_MALFORMED);
			return TC_ACT_SHOT;
		}
		seen |= 1u << (kind & 0x1f);
		percpu_inc(&option_seen, kind & 0x1f);
		count++;
		off += len;
	}

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (s) {
		s->l3_off = l3;
		s->saddr = ip->saddr;
		s->seen = seen;
		s->strip = 0;
		s->count = count;
		s->opt_len = hlen - sizeof(*ip);
		s->ttl = ip->ttl;
		s->protocol = ip->protocol;
		s->new_ttl = 0;
	}
	bpf_tail_call(skb, &prog_array, PROG_POLICY);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int scrub_policy(struct __sk_buff *skb)
{
	__u32 zero = 0, exempt = 0, seen, *allowed;
	struct Scratch *s;

	percpu_inc(&stage_runs, S_POLICY);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return TC_ACT_OK;
	allowed = bpf_map_lookup_elem(&trusted_sources, &s->saddr);
	if (allowed)
		exempt = *allowed;
	seen = s->seen & ~exempt;
	if (seen & scrub.drop_mask) {
		count_verdict(V_DROPPED);
		return TC_ACT_SHOT;
	}
	s->strip = seen & scrub.strip_mask;
	s->new_ttl = s->ttl < scrub.min_ttl ? scrub.min_ttl : 0;
	if (!s->strip && !s->new_ttl) {
		count_verdict(V_CLEAN);
		return TC_ACT_OK;
	}
	bpf_tail_call(skb, &prog_array, PROG_REWRITE);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int scrub_rewrite(struct __sk_buff *skb)
{
	__u32 zero = 0, l3, csum_off, n;
	struct Scratch *s;

	percpu_inc(&stage_runs, S_REWRITE);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return TC_ACT_OK;
	l3 = s->l3_off;
	csum_off = l3 + offsetof(struct iphdr, check);
	n = s->opt_len;
	if (!s->strip || n == 0)
		goto ttl;
	/* else clang tests n > 0 && n <= 40 as one test of n - 1, which tells the verifier
	 * nothing about n */
	barrier_var(n);
	if (n > MAX_OPT_LEN)
		goto ttl;
	{
		__u8 opts[MAX_OPT_LEN], old_opts[MAX_OPT_LEN];
		__s64 diff;

		if (bpf_skb_load_bytes(skb, l3 + sizeof(struct iphdr), opts, n)) {
			count_verdict(V_REWRITE_FAILED);
			return TC_ACT_OK;
		}
		__builtin_memcpy(old_opts, opts, sizeof(opts));
		/* the first n bytes count; all 40 is one constant-size memset */
		__builtin_memset(opts, IPOPT_NOP, sizeof(opts));
		diff = bpf_csum_diff((__be32 *)old_opts, n, (__be32 *)opts, n, 0);
		if (bpf_l3_csum_replace(skb, csum_off, 0, diff, 0) ||
		    bpf_skb_store_bytes(skb, l3 + sizeof(struct iphdr), opts, n, 0)) {
			count_verdict(V_REWRITE_FAILED);
			return TC_ACT_OK;
		}
		__sync_fetch_and_add(&options_stripped, s->count);
	}
ttl:
	if (s->new_ttl) {
		/* TTL and protocol share the header's fifth 16-bit word */
		__be16 old_word = bpf_htons((__u16)s->ttl << 8 | s->protocol);
		__be16 new_word = bpf_htons((__u16)s->new_ttl << 8 | s->protocol);
		__u8 ttl = s->new_ttl;

		if (bpf_l3_csum_replace(skb, csum_off, old_word, new_word, 2) ||
		    bpf_skb_store_bytes(skb, l3 + offsetof(struct iphdr, ttl), &ttl, 1, 0)) {
			count_verdict(V_REWRITE_FAILED);
			return TC_ACT_OK;
		}
		__sync_fetch_and_add(&ttl_raised, 1);
	}
	count_verdict(V_SCRUBBED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
