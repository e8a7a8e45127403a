// SPDX-License-Identifier: GPL-2.0
/* DHCP relay-agent guard (tc ingress): walks the DHCP options with
 * bpf_skb_load_bytes, counts message types, and drops DISCOVER/REQUEST
 * messages whose option 82 circuit id is not provisioned. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2

#define BOOTPS_PORT	67
#define BOOTPC_PORT	68
#define BOOTREQUEST	1
#define DHCP_COOKIE_OFF		236
#define DHCP_OPTIONS_OFF	240
#define DHCP_MAGIC_COOKIE	0x63825363
#define DHCP_MAX_OPTIONS	64

#define OPT_PAD		0
#define OPT_MSG_TYPE	53
#define OPT_RELAY_AGENT	82
#define OPT_END		255
#define SUBOPT_CIRCUIT_ID 1

#define DHCPDISCOVER	1
#define DHCPREQUEST	3

#define MAX_CIRCUIT_LEN	16

enum {
	OS_KNOWN	= 0,
	OS_UNKNOWN	= 1,
	OS_NO_OPT82	= 2,
	OS_BAD_CIRCUIT	= 3,
	OS_MALFORMED	= 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} dhcp_msg_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} opt82_stats SEC(".maps");

/* circuit id (zero padded) -> subscriber mark */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u8[MAX_CIRCUIT_LEN]);
	__type(value, __u32);
} known_circuits SEC(".maps");

static __always_inline void count(void *map, __u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(map, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tcx/ingress")
int dhcp_opt82(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;

	__u32 ihl = ip->ihl * 4;

	if (ihl < sizeof(*ip))
		return TC_ACT_OK;
	if (bpf_ntohs(ip->frag_off) & 0x3FFF)
		return TC_ACT_OK;

	__u32 udp_off = sizeof(*eth) + ihl;
	struct udphdr *udp = data + udp_off;

	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;

	__u16 dport = bpf_ntohs(udp->dest);

	if (dport != BOOTPS_PORT && dport != BOOTPC_PORT)
		return TC_ACT_OK;

	__u32 bootp = udp_off + sizeof(*udp);
	__u32 end = udp_off + bpf_ntohs(udp->len);
	__u8 op = 0, msg_type = 0;
	__u32 relay_off = 0, relay_len = 0;
	bool has_relay = false;
	__u32 cookie = 0;

	if (bpf_skb_load_bytes(skb, bootp, &op, 1) < 0)
		goto malformed;
	if (bpf_skb_load_bytes(skb, bootp + DHCP_COOKIE_OFF, &cookie, 4) < 0)
		goto malformed;
	if (bpf_ntohl(cookie) != DHCP_MAGIC_COOKIE)
		goto malformed;

	__u32 off = bootp + DHCP_OPTIONS_OFF;

	for (int i = 0; i < DHCP_MAX_OPTIONS; i++) {
		__u8 code = 0, len = 0;

		if (off >= end)
			break;
		if (bpf_skb_load_bytes(skb, off, &code, 1) < 0)
			goto malformed;
		if (code == OPT_END)
			break;
		if (code == OPT_PAD) {
			off += 1;
			continue;
		}
		if (bpf_skb_load_bytes(skb, off + 1, &len, 1) < 0)
			goto malformed;
		if (code == OPT_MSG_TYPE && len >= 1) {
			if (bpf_skb_load_bytes(skb, off + 2, &msg_type, 1) < 0)
				goto malformed;
		} else if (code == OPT_RELAY_AGENT) {
			has_relay = true;
			relay_off = off + 2;
			relay_len = len;
		}
		off += 2 + len;
	}

	count(&dhcp_msg_types, msg_type < 16 ? msg_type : 0);

	/* Only client requests towards the server are policed. */
	if (dport != BOOTPS_PORT || op != BOOTREQUEST)
		return TC_ACT_OK;
	if (msg_type != DHCPDISCOVER && msg_type != DHCPREQUEST)
		return TC_ACT_OK;
	if (!has_relay) {
		count(&opt82_stats, OS_NO_OPT82);
		return TC_ACT_OK;
	}

	__u8 circuit[MAX_CIRCUIT_LEN] = {};
	bool found = false;
	__u32 sub = relay_off;
	__u32 relay_end = relay_off + relay_len;

	for (int j = 0; j < 4; j++) {
		__u8 sh[2];

		if (sub + 2 > relay_end)
			break;
		if (bpf_skb_load_bytes(skb, sub, sh, 2) < 0)
			break;

		__u32 slen = sh[1];

		if (sh[0] == SUBOPT_CIRCUIT_ID) {
			if (slen == 0 || slen > MAX_CIRCUIT_LEN || sub + 2 + slen > relay_end)
				break;
			if (bpf_skb_load_bytes(skb, sub + 2, circuit, slen) < 0)
				break;
			found = true;
			break;
		}
		sub += 2 + slen;
	}
	if (!found) {
		count(&opt82_stats, OS_BAD_CIRCUIT);
		return TC_ACT_SHOT;
	}

	__u32 *mark = bpf_map_lookup_elem(&known_circuits, circuit);

	if (mark) {
		skb->mark = *mark;
		count(&opt82_stats, OS_KNOWN);
		return TC_ACT_OK;
	}
	count(&opt82_stats, OS_UNKNOWN);
	return TC_ACT_SHOT;

malformed:
	count(&opt82_stats, OS_MALFORMED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
