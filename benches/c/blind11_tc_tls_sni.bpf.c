// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind11_tc_tls_sni.ks: TLS server-name filtering on tc ingress.
 * IPv4 TCP payload to the configured port is read with bpf_skb_load_bytes as a TLS handshake
 * record with a ClientHello; session id, cipher suites and compression methods are skipped,
 * the extensions walked (at most 32) to server_name, whose host name (its last 64 bytes) is
 * hashed from its end (FNV-1a, lower case, trailing dot ignored). At each label boundary the
 * hash of that parent domain is looked up in blocked_domains; the first match decides (drop
 * when enforcing and not log-only). Named hellos are counted per hash and reported on a ring
 * buffer; every outcome is counted. The .ks throws become returned reason codes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IP_OFFSET 0x1fff
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define TLS_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define NAME_HOST 0
#define MAX_EXTENSIONS 32
#define NAME_MAX 64

#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u

/* reason codes, also the outcomes slots */
enum { E_NOT_HELLO = 1, E_TRUNCATED, E_MALFORMED, E_NO_SNI, E_TOO_MANY, O_ALLOWED, O_BLOCKED, O_LOGGED };

struct sni_config {
	__u16 port;
	bool enforce;
};

struct NameLoc {
	__u32 off;
	__u32 len;
	__u32 ext_index;
};

struct DomainRule {
	__u64 hits;
	bool log_only;
};

struct SniEvent {
	__u32 saddr;
	__u32 name_hash;
	__u32 rule_hash;
	__u16 name_len;
	__u8 verdict;
	__u8 ext_index;
};

struct sni_config sni SEC(".data.sni") = {
	.port = 443,
	.enforce = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct DomainRule);
} blocked_domains SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} sni_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} sni_events SEC(".maps");

__u64 events_lost = 0;

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&outcomes, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_name(__u32 hash)
{
	__u64 *v = bpf_map_lookup_elem(&sni_seen, &hash);
	__u64 one = 1;

	if (!v) {
		if (!bpf_map_update_elem(&sni_seen, &hash, &one, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&sni_seen, &hash);
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, 1);
}

static __always_inline int byte_at(struct __sk_buff *skb, __u32 off, __u32 end, __u32 *v)
{
	__u8 b;

	if (off + 1 > end || bpf_skb_load_bytes(skb, off, &b, 1))
		return E_TRUNCATED;
	*v = b;
	return 0;
}

static __always_inline int be16_at(struct __sk_buff *skb, __u32 off, __u32 end, __u32 *v)
{
	__be16 w;

	if (off + 2 > end || bpf_skb_load_bytes(skb, off, &w, 2))
		return E_TRUNCATED;
	*v = bpf_ntohs(w);
	return 0;
}

/* 0 with *loc set, or the reason code. A global function, verified once on its own: inlined,
 * each way out of the extension walk took the name hashing below with it through the verifier
 * (over its 1M-instruction limit). */
__noinline int find_server_name(struct __sk_buff *skb, __u32 payload, __u32 end, struct NameLoc *loc)
{
	__u32 off, v, ext_end, ext_type, ext_len, name_type, name_len;
	__u8 hdr[6];
	int err, i;

	if (!loc)
		return E_NOT_HELLO;
	if (payload + 6 > end || bpf_skb_load_bytes(skb, payload, hdr, 6))
		return E_NOT_HELLO;
	if (hdr[0] != TLS_HANDSHAKE || hdr[1] != 3 || hdr[5] != HS_CLIENT_HELLO)
		return E_NOT_HELLO;
	/* record header 5, handshake header 4, client_version 2, random 32 */
	off = payload + 43;
	if ((err = byte_at(skb, off, end, &v)))
		return err;
	if (v > 32)
		return E_MALFORMED;
	off += 1 + v;
	if ((err = be16_at(skb, off, end, &v)))		/* cipher suites */
		return err;
	off += 2 + v;
	if ((err = byte_at(skb, off, end, &v)))		/* compression methods */
		return err;
	off += 1 + v;
	if ((err = be16_at(skb, off, end, &v)))
		return err;
	ext_end = off + 2 + v;
	off += 2;

	for (i = 0; i < MAX_EXTENSIONS; i++) {
		if (off >= ext_end)
			return E_NO_SNI;
		if ((err = be16_at(skb, off, end, &ext_type)))
			return err;
		if ((err = be16_at(skb, off + 2, end, &ext_len)))
			return err;
		if (ext_type == EXT_SERVER_NAME) {
			/* list length (2), name type (1), name length (2), name */
			if ((err = byte_at(skb, off + 6, end, &name_type)))
				return err;
			if ((err = be16_at(skb, off + 7, end, &name_len)))
				return err;
			if (name_type != NAME_HOST || name_len == 0 || name_len + 5 > ext_len)
				return E_MALFORMED;
			if (off + 9 + name_len > end)
				return E_TRUNCATED;
			loc->off = off + 9;
			loc->len = name_len;
			loc->ext_index = i;
			return 0;
		}
		off += 4 + ext_len;
	}
	return E_TOO_MANY;
}

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}

SEC("tcx/ingress")
int sni_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct NameLoc loc = {};
	struct DomainRule *rule = NULL;
	struct SniEvent *ev;
	struct tcphdr *tcp;
	__u32 hlen, doff, payload, end, n, start, hash, rule_hash = 0, outcome, last, j;
	int err, verdict = TC_ACT_OK;
	__u8 name[NAME_MAX];
	__be32 saddr;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return TC_ACT_OK;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return TC_ACT_OK;
	tcp = (void *)ip + hlen;
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	if (bpf_ntohs(tcp->dest) != sni.port)
		return TC_ACT_OK;
	doff = tcp->doff * 4;
	if (doff < sizeof(*tcp))
		return TC_ACT_OK;
	saddr = ip->saddr;
	payload = sizeof(*eth) + hlen + doff;
	end = sizeof(*eth) + bpf_ntohs(ip->tot_len);
	if (end > skb->len)
		end = skb->len;
	if (payload >= end)
		return TC_ACT_OK;

	err = find_server_name(skb, payload, end, &loc);
	if (err) {
		count(err);
		return TC_ACT_OK;
	}

	/* the end of the name decides: a long name keeps its last NAME_MAX bytes */
	n = loc.len;
	start = loc.off;
	if (n > NAME_MAX) {
		start += n - NAME_MAX;
		n = NAME_MAX;
	}
	/* find_server_name made loc.len >= 1; the verifier must be told */
	barrier_var(n);
	if (n == 0)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, start, name, n)) {
		count(E_TRUNCATED);
		return TC_ACT_OK;
	}

	/* FNV-1a from the last byte back ("example.com." is example.com); at a label's first
	 * byte, hash is the hash of that domain. Counting j down keeps the verifier's loop state
	 * to j alone. */
	last = n;
	if (name[(n - 1) & (NAME_MAX - 1)] == '.')
		last = n - 1;
	hash = FNV_OFFSET;
	for (j = last; j > 0; j--) {
		__u32 i = j - 1;

		hash = (hash ^ lower(name[i & (NAME_MAX - 1)])) * FNV_PRIME;
		if (!rule_hash && (i == 0 || name[(i - 1) & (NAME_MAX - 1)] == '.')) {
			rule = bpf_map_lookup_elem(&blocked_domains, &hash);
			if (rule)
				rule_hash = hash;
		}
	}

	count_name(hash);
	outcome = O_ALLOWED;
	if (rule_hash && rule) {
		rule->hits += 1;
		if (sni.enforce && !rule->log_only) {
			verdict = TC_ACT_SHOT;
			outcome = O_BLOCKED;
		} else {
			outcome = O_LOGGED;
		}
	}
	count(outcome);

	ev = bpf_ringbuf_reserve(&sni_events, sizeof(*ev), 0);
	if (ev) {
		ev->saddr = saddr;
		ev->name_hash = hash;
		ev->rule_hash = rule_hash;
		ev->name_len = loc.len;
		ev->verdict = verdict;
		ev->ext_index = loc.ext_index;
		bpf_ringbuf_submit(ev, 0);
	} else {
		__sync_fetch_and_add(&events_lost, 1);
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
