// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_dhcp_snoop.ks: parses DHCP (BOOTP on UDP 67/68), walks
 * the options for the message type, counts messages per type, records DHCPDISCOVER clients in
 * an LRU table, drops DHCPOFFER/DHCPACK on an untrusted port and counts parse failures. The
 * .ks throw/catch becomes parse functions returning a negative reason code. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define BOOTPS 67
#define BOOTPC 68
#define DHCP_MAGIC 0x63825363
#define MAX_OPTIONS 24
#define BOOTP_FIXED 240

#define OPT_PAD 0
#define OPT_END 255
#define OPT_MSG_TYPE 53

#define DHCPDISCOVER 1
#define DHCPOFFER 2
#define DHCPACK 5

#define E_TRUNCATED 1
#define E_NOT_DHCP 2
#define E_BAD_OPTION 3
#define E_NO_TYPE 4

struct snoop_config {
	bool trusted;
};

struct bootp_hdr {
	__u8 op;
	__u8 htype;
	__u8 hlen;
	__u8 hops;
	__be32 xid;
	__be16 secs;
	__be16 flags;
	__be32 ciaddr;
	__be32 yiaddr;
	__be32 siaddr;
	__be32 giaddr;
	__u8 chaddr[16];
	__u8 sname[64];
	__u8 file[128];
	__be32 cookie;
};

struct MacAddr {
	__u8 addr[6];
};

struct ClientSeen {
	__u64 discovers;
	__u32 last_xid;
};

struct snoop_config snoop SEC(".data.snoop") = {
	.trusted = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 9);
	__type(key, __u32);
	__type(value, __u64);
} msg_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct MacAddr);
	__type(value, struct ClientSeen);
} discover_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} snoop_errors SEC(".maps");

__u64 rogue_dropped = 0;

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Returns the value of option 53, or -reason. */
static __always_inline int find_msg_type(__u8 *opts, void *data_end, __u32 olen)
{
	__u32 off = 0;
	int i;

	for (i = 0; i < MAX_OPTIONS; i++) {
		__u8 *opt, code;
		__u32 len;

		if (off >= olen)
			return -E_NO_TYPE;
		opt = opts + off;
		if ((void *)(opt + 1) > data_end)
			return -E_BAD_OPTION;
		code = opt[0];
		if (code == OPT_END)
			return -E_NO_TYPE;
		if (code == OPT_PAD) {
			off++;
			continue;
		}
		if (off + 2 > olen || (void *)(opt + 2) > data_end)
			return -E_BAD_OPTION;
		len = opt[1];
		if (off + 2 + len > olen)
			return -E_BAD_OPTION;
		if (code == OPT_MSG_TYPE) {
			if (len != 1 || (void *)(opt + 3) > data_end)
				return -E_BAD_OPTION;
			return opt[2];
		}
		off += 2 + len;
	}
	return -E_NO_TYPE;
}

SEC("xdp")
int dhcp_snoop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bootp_hdr *b;
	struct udphdr *udp;
	__u32 ihl, dgram_len;
	__u16 sport, dport;
	int kind;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_PASS;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	sport = bpf_ntohs(udp->source);
	dport = bpf_ntohs(udp->dest);
	if (!((sport == BOOTPC && dport == BOOTPS) || (sport == BOOTPS && dport == BOOTPC)))
		return XDP_PASS;

	dgram_len = bpf_ntohs(udp->len);
	if ((void *)udp + dgram_len > data_end)
		goto truncated;
	b = (void *)(udp + 1);
	if (dgram_len < sizeof(*udp) + BOOTP_FIXED || (void *)(b + 1) > data_end)
		goto truncated;
	if (b->op < 1 || b->op > 2 || b->htype != 1 || b->hlen != 6 ||
	    b->cookie != bpf_htonl(DHCP_MAGIC)) {
		array_inc(&snoop_errors, E_NOT_DHCP);
		return XDP_PASS;
	}

	kind = find_msg_type((__u8 *)(b + 1), data_end,
			     dgram_len - sizeof(*udp) - BOOTP_FIXED);
	if (kind == -E_BAD_OPTION) {
		array_inc(&snoop_errors, E_BAD_OPTION);
		return XDP_DROP;
	}
	if (kind == -E_NO_TYPE) {
		array_inc(&snoop_errors, E_NO_TYPE);
		return XDP_PASS;
	}

	array_inc(&msg_types, kind >= 1 && kind <= 8 ? kind : 0);

	if (kind == DHCPDISCOVER) {
		struct MacAddr mac;
		struct ClientSeen *seen;

		__builtin_memcpy(mac.addr, b->chaddr, sizeof(mac.addr));
		seen = bpf_map_lookup_elem(&discover_clients, &mac);
		if (seen) {
			seen->discovers += 1;
			seen->last_xid = bpf_ntohl(b->xid);
		} else {
			struct ClientSeen init;

			__builtin_memset(&init, 0, sizeof(init));
			init.discovers = 1;
			init.last_xid = bpf_ntohl(b->xid);
			bpf_map_update_elem(&discover_clients, &mac, &init, BPF_ANY);
		}
	} else if (kind == DHCPOFFER || kind == DHCPACK) {
		if (!snoop.trusted) {
			__sync_fetch_and_add(&rogue_dropped, 1);
			return XDP_DROP;
		}
	}
	return XDP_PASS;

truncated:
	array_inc(&snoop_errors, E_TRUNCATED);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
