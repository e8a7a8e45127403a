// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/flow_match_dispatch.ks: edge policy dispatching on
 * the IP protocol and the destination port to one small function per service. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum service {
	SVC_SSH = 0,
	SVC_WEB = 1,
	SVC_DNS = 2,
	SVC_NTP = 3,
	SVC_ICMP = 4,
	SVC_DENIED = 5,
	SVC_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SVC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} service_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} ssh_denied SEC(".maps");

static __always_inline void hit(__u32 svc)
{
	__u64 *v = bpf_map_lookup_elem(&service_hits, &svc);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int deny(void)
{
	hit(SVC_DENIED);
	return XDP_DROP;
}

static __always_inline int ssh_policy(__u32 saddr)
{
	__u64 *v, one = 1;

	if ((bpf_ntohl(saddr) & 0xFF000000) != 0x0A000000) {	/* admin network 10.0.0.0/8 */
		v = bpf_map_lookup_elem(&ssh_denied, &saddr);
		if (v)
			__sync_fetch_and_add(v, 1);
		else if (bpf_map_update_elem(&ssh_denied, &saddr, &one, BPF_NOEXIST) &&
			 (v = bpf_map_lookup_elem(&ssh_denied, &saddr)))
			__sync_fetch_and_add(v, 1);
		return deny();
	}
	hit(SVC_SSH);
	return XDP_PASS;
}

static __always_inline int tcp_policy(void *data, void *data_end, __u32 saddr)
{
	struct tcphdr *tcp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);

	if ((void *)&tcp->seq > data_end)	/* the two ports */
		return deny();
	switch (bpf_ntohs(tcp->dest)) {
	case 22:
		return ssh_policy(saddr);
	case 80:
	case 443:
		hit(SVC_WEB);
		return XDP_PASS;
	case 23:
		return deny();
	default:
		return XDP_PASS;
	}
}

static __always_inline int udp_policy(void *data, void *data_end)
{
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u8 *ntp = (void *)(udp + 1);

	if ((void *)(udp + 1) > data_end)
		return deny();
	switch (bpf_ntohs(udp->dest)) {
	case 53:
		if (bpf_ntohs(udp->len) > 8 + 512)
			return deny();
		hit(SVC_DNS);
		return XDP_PASS;
	case 123:
		if ((void *)(ntp + 1) > data_end)
			return deny();
		if ((*ntp & 0x07) == 7)	/* mode 7: private (monlist) */
			return deny();
		hit(SVC_NTP);
		return XDP_PASS;
	case 161:
		return deny();
	default:
		return XDP_PASS;
	}
}

SEC("xdp")
int edge_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *icmp_type = (void *)(ip + 1);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5)
		return XDP_PASS;

	switch (ip->protocol) {
	case IPPROTO_TCP:
		return tcp_policy(data, data_end, ip->saddr);
	case IPPROTO_UDP:
		return udp_policy(data, data_end);
	case IPPROTO_ICMP:
		if ((void *)(icmp_type + 1) > data_end)
			return deny();
		hit(SVC_ICMP);
		switch (*icmp_type) {
		case 0:		/* echo reply */
		case 3:		/* destination unreachable */
		case 8:		/* echo request */
		case 11:	/* time exceeded */
			return XDP_PASS;
		default:
			return deny();
		}
	default:
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "GPL";
