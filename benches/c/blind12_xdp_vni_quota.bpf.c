// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_xdp_vni_quota.ks: per-tenant VXLAN byte quotas at the
 * underlay port. IPv4/UDP frames to the VXLAN port are charged to the tenant their VNI names:
 * unknown VNIs are dropped, Block tenants dropped, inner IPv4 sources checked (when the tenant
 * asks) against an LPM trie keyed by {VNI, address}, bytes charged against the quota in a shared
 * hash; Enforce drops over-quota frames, Monitor passes them. Per-VNI per-CPU stats, one outcome
 * counter per frame. The .ks throwing readers become functions returning a fault code; the
 * deferred vxlan_frames count is done where the defer is registered. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define VXLAN_FLAG_I 0x08

enum {
	O_FORWARDED = 0,
	O_MONITORED = 1,
	O_OVER_QUOTA = 2,
	O_SPOOFED = 3,
	O_BLOCKED = 4,
	O_UNKNOWN_VNI = 5,
	O_MALFORMED = 6,
	O_NOT_VXLAN = 7,
};

enum {
	F_TRUNCATED = 1,
	F_BAD_FLAGS = 2,
	F_BAD_INNER = 3,
	F_NO_TENANT = 4,
};

enum { MODE_ENFORCE = 0, MODE_MONITOR = 1, MODE_BLOCK = 2 };

struct vni_guard_config {
	__u16 port;
	bool drop_malformed;
};

struct vni_guard_config vni_guard SEC(".data.vni_guard") = {
	.port = 4789,
	.drop_malformed = true,
};

struct VxlanHdr {
	__u8 flags;
	__u8 reserved[3];
	__be32 vni_word;
};

struct Tenant {
	__u64 quota_bytes;
	__u32 mode;
	bool check_inner;
};

struct TenantPrefix {
	__u32 prefixlen;
	__be32 vni;
	__be32 addr;
};

struct VniStats {
	__u64 packets;
	__u64 bytes;
	__u64 spoofed;
	__u64 over_quota;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct Tenant);
} tenants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct TenantPrefix);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct VniStats);
} vni_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} usage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

__u64 vxlan_frames = 0;

static __always_inline void count(__u32 outcome)
{
	__u64 *c = bpf_map_lookup_elem(&outcomes, &outcome);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* usage[vni] += n, then the new total (0 if the entry could not be created) */
static __always_inline __u64 charge(__u32 vni, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&usage, &vni);

	if (v)
		return __sync_add_and_fetch(v, n);
	if (!bpf_map_update_elem(&usage, &vni, &n, BPF_NOEXIST))
		return n;
	v = bpf_map_lookup_elem(&usage, &vni);
	if (v)
		return __sync_add_and_fetch(v, n);
	return 0;
}

SEC("xdp")
int vni_quota(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct TenantPrefix key;
	struct VxlanHdr *vx;
	struct ethhdr *ieth;
	struct iphdr *iip;
	struct udphdr *udp;
	struct VniStats *s;
	struct Tenant *t;
	__u32 l4, vni, fault, *rule;
	__u64 len;
	bool inner_ipv4 = false, over;

	if ((void *)(ip + 1) > data_end)
		goto not_vxlan;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
		goto not_vxlan;
	l4 = sizeof(*eth) + ip->ihl * 4;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		goto not_vxlan;
	if (udp->dest != bpf_htons(vni_guard.port))
		goto not_vxlan;
	/* the .ks defers this to every exit from here on */
	__sync_fetch_and_add(&vxlan_frames, 1);

	len = data_end - data;
	vx = (void *)(udp + 1);
	if ((void *)(vx + 1) > data_end) {
		fault = F_TRUNCATED;
		goto bad;
	}
	if (!(vx->flags & VXLAN_FLAG_I)) {
		fault = F_BAD_FLAGS;
		goto bad;
	}
	vni = bpf_ntohl(vx->vni_word) >> 8;

	t = bpf_map_lookup_elem(&tenants, &vni);
	if (!t) {
		count(O_UNKNOWN_VNI);
		return XDP_DROP;
	}
	if (t->mode == MODE_BLOCK) {
		count(O_BLOCKED);
		return XDP_DROP;
	}

	ieth = (void *)(vx + 1);
	if ((void *)(ieth + 1) > data_end) {
		fault = F_TRUNCATED;
		goto bad;
	}
	key.addr = 0;
	if (ieth->h_proto == bpf_htons(ETH_P_IP)) {
		iip = (void *)(ieth + 1);
		if ((void *)(iip + 1) > data_end) {
			fault = F_TRUNCATED;
			goto bad;
		}
		if (iip->version != 4 || iip->ihl < 5) {
			fault = F_BAD_INNER;
			goto bad;
		}
		key.addr = iip->saddr;
		inner_ipv4 = true;
	}

	s = bpf_map_lookup_elem(&vni_stats, &vni);
	if (!s) {
		struct VniStats zero = {};

		bpf_map_update_elem(&vni_stats, &vni, &zero, BPF_ANY);
		s = bpf_map_lookup_elem(&vni_stats, &vni);
	}
	/* per-CPU slot: plain updates */
	if (s) {
		s->packets += 1;
		s->bytes += len;
	}

	if (inner_ipv4 && t->check_inner) {
		key.prefixlen = 64;
		key.vni = bpf_htonl(vni);
		rule = bpf_map_lookup_elem(&allowed, &key);
		if (!rule || *rule == 0) {
			if (s)
				s->spoofed += 1;
			count(O_SPOOFED);
			return XDP_DROP;
		}
	}

	over = charge(vni, len) > t->quota_bytes;
	if (over && s)
		s->over_quota += 1;
	if (t->mode == MODE_MONITOR) {
		count(O_MONITORED);
		return XDP_PASS;
	}
	if (over) {
		count(O_OVER_QUOTA);
		return XDP_DROP;
	}
	count(O_FORWARDED);
	return XDP_PASS;

bad:
	count(O_MALFORMED);
	return vni_guard.drop_malformed ? XDP_DROP : XDP_PASS;

not_vxlan:
	count(O_NOT_VXLAN);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
