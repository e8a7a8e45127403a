// SPDX-License-Identifier: GPL-2.0
/* blind16_xdp_tcp_fastopen.bpf.c — C twin of blind16_xdp_tcp_fastopen.ks.
 * TCP Fast Open census/policy on IPv4 SYNs: walk the TCP options looking for
 * kind 34 or the experimental kind 254/0xF989, count requests and cookies per
 * destination port, drop cookies to the configured port, drop malformed SYNs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP		0x0800
#define TCPOPT_EOL		0
#define TCPOPT_NOP		1
#define TCPOPT_FASTOPEN		34
#define TCPOPT_EXP		254
#define TCPOPT_FASTOPEN_MAGIC	0xF989

enum tfo_kind { TFO_NONE, TFO_REQUEST, TFO_COOKIE, TFO_MALFORMED };

struct tfo_stats {
	__u64 requests;
	__u64 cookies;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, struct tfo_stats);
} tfo_ports SEC(".maps");

struct tfo_config {
	__u16 disabled_port;
	bool drop_malformed;
} tfo SEC(".data.tfo") = {
	.disabled_port = 0,
	.drop_malformed = true,
};

__u64 syns_seen = 0;
__u64 tfo_dropped = 0;
__u64 malformed_syns = 0;

static __always_inline enum tfo_kind classify_cookie(__u32 cookie_len)
{
	if (cookie_len == 0)
		return TFO_REQUEST;
	if (cookie_len >= 4 && cookie_len <= 16)
		return TFO_COOKIE;
	return TFO_MALFORMED;
}

static __always_inline int malformed(void)
{
	__sync_fetch_and_add(&malformed_syns, 1);
	return tfo.drop_malformed ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int tcp_fastopen_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;

	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;

	__u32 hlen = tcp->doff * 4;
	if (hlen < sizeof(*tcp))
		return malformed();
	if ((void *)tcp + hlen > data_end)
		return XDP_PASS;
	__sync_fetch_and_add(&syns_seen, 1);

	__u8 *opts = (__u8 *)(tcp + 1);
	__u32 opt_len = hlen - sizeof(*tcp);
	enum tfo_kind kind = TFO_NONE;
	__u32 off = 0;

	/* every round consumes at least one byte: at most 40 rounds */
	while (off < opt_len) {
		__u8 *p = opts + off;
		if ((void *)(p + 1) > data_end)
			break;
		__u8 k = p[0];
		if (k == TCPOPT_EOL)
			break;
		if (k == TCPOPT_NOP) {
			off++;
			continue;
		}
		if (off + 2 > opt_len) {
			kind = TFO_MALFORMED;
			break;
		}
		if ((void *)(p + 2) > data_end)
			break;
		__u32 len = p[1];
		if (len < 2 || off + len > opt_len) {
			kind = TFO_MALFORMED;
			break;
		}
		if (k == TCPOPT_FASTOPEN) {
			kind = classify_cookie(len - 2);
			break;
		}
		if (k == TCPOPT_EXP && len >= 4) {
			if ((void *)(p + 4) > data_end)
				break;
			if (((p[2] << 8) | p[3]) == TCPOPT_FASTOPEN_MAGIC) {
				kind = classify_cookie(len - 4);
				break;
			}
		}
		off += len;
	}

	if (kind == TFO_NONE)
		return XDP_PASS;
	if (kind == TFO_MALFORMED)
		return malformed();

	__u16 port = bpf_ntohs(tcp->dest);
	struct tfo_stats *s = bpf_map_lookup_elem(&tfo_ports, &port);
	if (s) {
		if (kind == TFO_REQUEST)
			__sync_fetch_and_add(&s->requests, 1);
		else
			__sync_fetch_and_add(&s->cookies, 1);
	} else {
		struct tfo_stats init = {
			.requests = kind == TFO_REQUEST,
			.cookies = kind == TFO_COOKIE,
		};
		bpf_map_update_elem(&tfo_ports, &port, &init, BPF_ANY);
	}

	if (kind == TFO_COOKIE && tfo.disabled_port && port == tfo.disabled_port) {
		__sync_fetch_and_add(&tfo_dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
