// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/maps_config_policy.ks: a host ingress policy
 * driven by a config block (minimum TTL, fragments, ICMP, SSH, one blocked UDP port),
 * drops counted per reason. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

enum DropReason {
	Malformed = 0,
	LowTtl = 1,
	Fragment = 2,
	IcmpBlocked = 3,
	SshBlocked = 4,
	UdpPortBlocked = 5,
};

/* config policy { ... }: 10 bytes, one padding byte before ssh_port */
struct policy_config {
	bool enabled;
	__u8 min_ttl;
	bool drop_fragments;
	bool allow_icmp;
	bool allow_ssh;
	__u16 ssh_port;
	__u16 blocked_udp_port;		/* 0: none */
};

/* the first four bytes of a TCP or UDP header */
struct L4Ports {
	__u16 source;
	__u16 dest;
};

struct policy_config policy SEC(".data.policy") = {
	.enabled = true,
	.min_ttl = 1,
	.drop_fragments = true,
	.allow_icmp = true,
	.allow_ssh = true,
	.ssh_port = 22,
	.blocked_udp_port = 0,
};

/* key: an enum DropReason */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

__u64 passed = 0;

static __always_inline int drop(__u32 reason)
{
	__u64 *cnt = bpf_map_lookup_elem(&drops, &reason);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_DROP;
}

SEC("xdp")
int host_policy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct L4Ports *ports;
	__u16 dport;

	if (!policy.enabled)
		return XDP_PASS;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return drop(Malformed);
	if (ip->ttl < policy.min_ttl)
		return drop(LowTtl);
	if (policy.drop_fragments && (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return drop(Fragment);
	if (ip->protocol == IPPROTO_ICMP && !policy.allow_icmp)
		return drop(IcmpBlocked);
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		ports = (void *)ip + ip->ihl * 4;
		if ((void *)(ports + 1) > data_end)
			return drop(Malformed);
		dport = bpf_ntohs(ports->dest);
		if (ip->protocol == IPPROTO_TCP && dport == policy.ssh_port && !policy.allow_ssh)
			return drop(SshBlocked);
		if (ip->protocol == IPPROTO_UDP && policy.blocked_udp_port &&
		    dport == policy.blocked_udp_port)
			return drop(UdpPortBlocked);
	}
	__sync_fetch_and_add(&passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
