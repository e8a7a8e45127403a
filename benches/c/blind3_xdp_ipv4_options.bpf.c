// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind3_xdp_ipv4_options.ks: IPv4 option policing in
 * XDP. The options of the IPv4 header are walked (EOL and NOP are one byte, the others carry
 * their length), each is counted by kind, and record-route / source-route options, invalid
 * headers, overrunning options and short headers are dropped. Fragments are counted and passed;
 * the rest is counted by transport protocol. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define IPOPT_EOL 0
#define IPOPT_NOP 1
#define IPOPT_RR 7
#define IPOPT_LSRR 131
#define IPOPT_SSRR 137

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define MAX_OPTION_STEPS 40

enum ProtoClass { Tcp = 0, Udp = 1, Icmp = 2, Other = 3 };
enum Reject { Truncated = 0, BadHeader = 1, BadOption = 2, RecordRoute = 3, SourceRoute = 4 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} option_kinds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} protocols SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} rejected SEC(".maps");

__u64 non_ipv4 = 0;
__u64 with_options = 0;
__u64 fragments = 0;

static __always_inline void count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int reject(__u32 reason)
{
	count(&rejected, reason);
	return XDP_DROP;
}

SEC("xdp")
int ipv4_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 hlen, off, steps = 0, class;
	__u16 frag;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return XDP_PASS;
	}
	if ((void *)(ip + 1) > data_end)
		return reject(Truncated);
	hlen = ip->ihl * 4;
	if (ip->version != 4 || hlen < sizeof(*ip))
		return reject(BadHeader);
	if ((void *)ip + hlen > data_end)
		return reject(Truncated);

	if (hlen > sizeof(*ip)) {
		__sync_fetch_and_add(&with_options, 1);
		off = sizeof(*ip);
		while (off < hlen && steps < MAX_OPTION_STEPS) {
			__u8 *opt, kind, len;

			steps++;
			/* off < hlen <= 60, so the byte is inside the header checked above; the
			 * mask (a no-op) keeps the verifier's view of off small */
			opt = (__u8 *)ip + (off & 0x3f);
			if ((void *)(opt + 1) > data_end)
				return XDP_PASS;
			kind = opt[0];
			count(&option_kinds, kind);
			if (kind == IPOPT_EOL)
				break;
			if (kind == IPOPT_NOP) {
				off++;
				continue;
			}
			/* kind, length, data: the length counts the first two bytes too */
			if (off + 2 > hlen)
				return reject(BadOption);
			if ((void *)(opt + 2) > data_end)
				return XDP_PASS;
			len = opt[1];
			if (len < 2 || off + len > hlen)
				return reject(BadOption);
			if (kind == IPOPT_RR)
				return reject(RecordRoute);
			if (kind == IPOPT_LSRR || kind == IPOPT_SSRR)
				return reject(SourceRoute);
			off += len;
		}
	}

	frag = bpf_ntohs(ip->frag_off);
	if ((frag & IP_MF) || (frag & IP_OFFSET)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}

	switch (ip->protocol) {
	case IPPROTO_TCP:
		class = Tcp;
		break;
	case IPPROTO_UDP:
		class = Udp;
		break;
	case IPPROTO_ICMP:
		class = Icmp;
		break;
	default:
		class = Other;
		break;
	}
	count(&protocols, class);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
