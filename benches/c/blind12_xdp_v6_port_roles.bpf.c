// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_xdp_v6_port_roles.ks: IPv6 RA guard and DHCPv6 shield per
 * port role. The port is (ingress ifindex, VLAN of the frame, 0 untagged); its role comes from
 * `ports` or the config's default. Host ports may send no RA, Redirect or DHCPv6 server message,
 * Router ports RAs and Redirects, Server ports DHCPv6 server messages, Trusted ports anything;
 * log-only ports pass their rogue messages. The upper layer is found through at most five
 * extension headers; later fragments pass; invalid RAs are dropped everywhere; unparsable frames
 * dropped except on Trusted ports. The .ks throwing helpers become functions returning an error
 * code; the deferred ipv6_frames count is done where the defer is registered. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define ND_ROUTER_ADVERT 134
#define ND_REDIRECT 137
#define DHCP6_CLIENT_PORT 546
#define DHCP6_SERVER_PORT 547
#define MAX_WALK 6
#define IPPROTO_ICMPV6 58

#define E_CUT 1
#define E_TOO_DEEP 2
#define E_BAD_VERSION 3
#define E_INVALID_RA 4

enum { ROLE_HOST = 0, ROLE_ROUTER = 1, ROLE_SERVER = 2, ROLE_TRUSTED = 3 };

enum { KIND_OTHER = 0, KIND_RA = 1, KIND_REDIRECT = 2, KIND_DHCP_SERVER = 3 };

enum {
	R_NOT_IPV6 = 0,
	R_ORDINARY = 1,
	R_ALLOWED = 2,
	R_ROGUE = 3,
	R_LOGGED_ROGUE = 4,
	R_INVALID_RA = 5,
	R_LATER_FRAGMENT = 6,
	R_UNPARSABLE = 7,
};

struct guard_config {
	__u32 default_role;
};

struct guard_config guard SEC(".data.guard") = {
	.default_role = ROLE_HOST,
};

struct PortKey {
	__u32 ifindex;
	__u32 vlan;
};

struct IfPolicy {
	__u32 role;
	bool log_only;
};

struct StatKey {
	__u32 ifindex;
	__u32 kind;
};

struct Counts {
	__u64 passed;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct PortKey);
	__type(value, struct IfPolicy);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct StatKey);
	__type(value, struct Counts);
} msg_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} reasons SEC(".maps");

__u64 ipv6_frames = 0;

static __always_inline void count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&reasons, &reason);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* Finds the upper-layer header after the fixed IPv6 header at l3: 0 with *proto and *off set
 * (*later set for a non-first fragment), or an error. */
static __always_inline int find_upper(void *data, void *data_end, __u8 nh, __u32 off,
				      __u8 *proto, __u32 *upper, bool *later)
{
	int i;

	for (i = 0; i < MAX_WALK; i++) {
		if (nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST) {
			struct ipv6_opt_hdr *opt = data + off;

			if ((void *)(opt + 1) > data_end)
				return E_CUT;
			nh = opt->nexthdr;
			off += (opt->hdrlen + 1) * 8;
		} else if (nh == NEXTHDR_FRAGMENT) {
			struct frag_hdr *fh = data + off;

			if ((void *)(fh + 1) > data_end)
				return E_CUT;
			if (fh->frag_off & bpf_htons(0xfff8)) {
				*proto = fh->nexthdr;
				*upper = off + 8;
				*later = true;
				return 0;
			}
			nh = fh->nexthdr;
			off += 8;
		} else {
			*proto = nh;
			*upper = off;
			*later = false;
			return 0;
		}
	}
	return E_TOO_DEEP;
}

/* The guarded kind of the upper-layer message (>= 0), or -E_CUT / -E_INVALID_RA. */
static __always_inline int message_kind(void *data, void *data_end, struct ipv6hdr *ip6,
					__u8 proto, __u32 off)
{
	if (proto == IPPROTO_ICMPV6) {
		struct icmp6hdr *icmp = data + off;

		if ((void *)(icmp + 1) > data_end)
			return -E_CUT;
		if (icmp->icmp6_type == ND_REDIRECT)
			return KIND_REDIRECT;
		if (icmp->icmp6_type != ND_ROUTER_ADVERT)
			return KIND_OTHER;
		if (icmp->icmp6_code != 0 || ip6->hop_limit != 255 ||
		    ip6->saddr.in6_u.u6_addr8[0] != 0xfe ||
		    (ip6->saddr.in6_u.u6_addr8[1] & 0xc0) != 0x80 ||
		    data + off + 16 > data_end)
			return -E_INVALID_RA;
		return KIND_RA;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = data + off;
		__u8 *msg;

		if ((void *)(udp + 1) > data_end)
			return -E_CUT;
		if (udp->source != bpf_htons(DHCP6_SERVER_PORT) ||
		    (udp->dest != bpf_htons(DHCP6_CLIENT_PORT) &&
		     udp->dest != bpf_htons(DHCP6_SERVER_PORT)))
			return KIND_OTHER;
		msg = (void *)(udp + 1);
		if ((void *)(msg + 1) > data_end)
			return -E_CUT;
		switch (*msg) {
		case 2:		/* ADVERTISE */
		case 7:		/* REPLY */
		case 10:	/* RECONFIGURE */
		case 13:	/* RELAY-REPL */
			return KIND_DHCP_SERVER;
		default:
			return KIND_OTHER;
		}
	}
	return KIND_OTHER;
}

static __always_inline void record(__u32 ifindex, __u32 kind, bool passed)
{
	struct StatKey key = { .ifindex = ifindex, .kind = kind };
	struct Counts *c = bpf_map_lookup_elem(&msg_stats, &key);

	if (c) {
		/* per-CPU slot: plain updates */
		if (passed)
			c->passed += 1;
		else
			c->dropped += 1;
	} else {
		struct Counts init = { .passed = passed, .dropped = !passed };

		bpf_map_update_elem(&msg_stats, &key, &init, BPF_ANY);
	}
}

SEC("xdp")
int v6_port_roles(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct PortKey pk;
	struct IfPolicy *p;
	struct ipv6hdr *ip6;
	__u32 l3 = sizeof(*eth), vlan = 0, ifindex, role, upper;
	bool log_only = false, later, allowed;
	__be16 proto;
	__u8 up;
	int err, kind;

	if ((void *)(eth + 1) > data_end)
		goto not_ipv6;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > data_end)
			goto not_ipv6;
		vlan = bpf_ntohs(tag->h_vlan_TCI) & 0x0fff;
		proto = tag->h_vlan_encapsulated_proto;
		l3 += sizeof(*tag);
	}
	if (proto != bpf_htons(ETH_P_IPV6))
		goto not_ipv6;
	/* the .ks defers this to every exit from here on */
	__sync_fetch_and_add(&ipv6_frames, 1);

	ifindex = ctx->ingress_ifindex;
	role = guard.default_role;
	pk.ifindex = ifindex;
	pk.vlan = vlan;
	p = bpf_map_lookup_elem(&ports, &pk);
	if (p) {
		role = p->role;
		log_only = p->log_only;
	}

	ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end) {
		err = E_CUT;
		goto bad;
	}
	if (ip6->version != 6) {
		err = E_BAD_VERSION;
		goto bad;
	}
	err = find_upper(data, data_end, ip6->nexthdr, l3 + sizeof(*ip6), &up, &upper, &later);
	if (err)
		goto bad;
	if (later) {
		count(R_LATER_FRAGMENT);
		return XDP_PASS;
	}
	kind = message_kind(data, data_end, ip6, up, upper);
	if (kind < 0) {
		err = -kind;
		goto bad;
	}
	if (kind == KIND_OTHER) {
		count(R_ORDINARY);
		return XDP_PASS;
	}
	switch (role) {
	case ROLE_TRUSTED:
		allowed = true;
		break;
	case ROLE_ROUTER:
		allowed = kind == KIND_RA || kind == KIND_REDIRECT;
		break;
	case ROLE_SERVER:
		allowed = kind == KIND_DHCP_SERVER;
		break;
	default:
		allowed = false;
		break;
	}
	record(ifindex, kind, allowed || log_only);
	if (allowed) {
		count(R_ALLOWED);
		return XDP_PASS;
	}
	if (log_only) {
		count(R_LOGGED_ROGUE);
		return XDP_PASS;
	}
	count(R_ROGUE);
	return XDP_DROP;

bad:
	if (err == E_INVALID_RA) {
		count(R_INVALID_RA);
		return XDP_DROP;
	}
	count(R_UNPARSABLE);
	return role == ROLE_TRUSTED ? XDP_PASS : XDP_DROP;

not_ipv6:
	count(R_NOT_IPV6);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
