// SPDX-License-Identifier: GPL-2.0
// blind15_xdp_sip_methods.bpf.c — C twin of blind15_xdp_sip_methods.ks: SIP (UDP/5060) request
// method classifier with a per-source fixed-window REGISTER limiter.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define SIP_PORT 5060
#define MAX_TOKEN 16

enum method {
	M_INVITE = 0, M_REGISTER = 1, M_OPTIONS = 2, M_BYE = 3,
	M_CANCEL = 4, M_ACK = 5, M_OTHER = 6, M_MALFORMED = 7,
};

struct reg_bucket {
	__u32 tokens;
	__u64 last_ns; /* start of the fixed window the tokens were granted for */
};

struct sip_config {
	__u32 register_burst;
	__u32 window_sec;
};

struct sip_config sip SEC(".data.sip") = {
	.register_burst = 10,
	.window_sec = 60,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} method_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct reg_bucket);
} reg_buckets SEC(".maps");

__u64 sip_datagrams = 0;
__u64 malformed_drops = 0;
__u64 register_drops = 0;

static __always_inline void count_method(__u32 m)
{
	__u64 *v = bpf_map_lookup_elem(&method_counts, &m);

	if (v)
		*v += 1;
}

static __always_inline __u32 method_of(const char *tok, const void *data_end, __u32 len)
{
	switch (len) {
	case 3:
		if (tok + 3 > (const char *)data_end)
			break;
		if (tok[0] == 'B' && tok[1] == 'Y' && tok[2] == 'E')
			return M_BYE;
		if (tok[0] == 'A' && tok[1] == 'C' && tok[2] == 'K')
			return M_ACK;
		break;
	case 6:
		if (tok + 6 > (const char *)data_end)
			break;
		if (tok[0] == 'I' && tok[1] == 'N' && tok[2] == 'V' && tok[3] == 'I' &&
		    tok[4] == 'T' && tok[5] == 'E')
			return M_INVITE;
		if (tok[0] == 'C' && tok[1] == 'A' && tok[2] == 'N' && tok[3] == 'C' &&
		    tok[4] == 'E' && tok[5] == 'L')
			return M_CANCEL;
		break;
	case 7:
		if (tok + 7 > (const char *)data_end)
			break;
		if (tok[0] == 'O' && tok[1] == 'P' && tok[2] == 'T' && tok[3] == 'I' &&
		    tok[4] == 'O' && tok[5] == 'N' && tok[6] == 'S')
			return M_OPTIONS;
		break;
	case 8:
		if (tok + 8 > (const char *)data_end)
			break;
		if (tok[0] == 'R' && tok[1] == 'E' && tok[2] == 'G' && tok[3] == 'I' &&
		    tok[4] == 'S' && tok[5] == 'T' && tok[6] == 'E' && tok[7] == 'R')
			return M_REGISTER;
		break;
	}
	return M_OTHER;
}

static __always_inline int limit_register(__u32 src)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 window = (__u64)sip.window_sec * 1000000000ULL;
	__u64 start = now - now % window;
	struct reg_bucket *b = bpf_map_lookup_elem(&reg_buckets, &src);

	if (b) {
		if (b->last_ns != start) {
			b->tokens = sip.register_burst;
			b->last_ns = start;
		}
		if (b->tokens == 0) {
			__sync_fetch_and_add(&register_drops, 1);
			return XDP_DROP;
		}
		b->tokens -= 1;
		return XDP_PASS;
	}
	if (sip.register_burst == 0) {
		__sync_fetch_and_add(&register_drops, 1);
		return XDP_DROP;
	}
	struct reg_bucket nb;
	__builtin_memset(&nb, 0, sizeof(nb));
	nb.tokens = sip.register_burst - 1;
	nb.last_ns = start;
	bpf_map_update_elem(&reg_buckets, &src, &nb, BPF_ANY);
	return XDP_PASS;
}

SEC("xdp")
int sip_methods(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS; /* no UDP header in this fragment */
	__u32 ihl = ip->ihl;
	if (ihl < 5)
		return XDP_DROP;

	struct udphdr *udp = data + sizeof(*eth) + ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(SIP_PORT))
		return XDP_PASS;
	__sync_fetch_and_add(&sip_datagrams, 1);

	/* the method token ends at the first space within the first 16 payload bytes */
	const char *tok = (const char *)(udp + 1);
	__u32 len = MAX_TOKEN;
	for (__u32 i = 0; i < MAX_TOKEN; i++) {
		if ((void *)(tok + i + 1) > data_end)
			break;
		if (tok[i] == ' ') {
			len = i;
			break;
		}
	}
	if (len == 0 || len == MAX_TOKEN) {
		count_method(M_MALFORMED);
		__sync_fetch_and_add(&malformed_drops, 1);
		return XDP_DROP;
	}

	__u32 m = method_of(tok, data_end, len);
	count_method(m);
	if (m != M_REGISTER)
		return XDP_PASS;
	return limit_register(ip->saddr);
}

char LICENSE[] SEC("license") = "GPL";
