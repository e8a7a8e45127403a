// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind12_tc_snat.ks: source NAT for IPv4 TCP and UDP on tc egress.
 * Unfragmented TCP/UDP packets are looked up in snat_rules by (saddr, sport, proto), then by
 * (saddr, 0, proto); the rule gives the new address and (unless 0) the new port. A reverse
 * session that belongs to another original source drops the packet (collision). The L4
 * checksum is updated with bpf_l4_csum_replace (pseudo-header address, then port; a UDP
 * checksum of 0 stays 0), the IP checksum with bpf_l3_csum_replace, and the new port and
 * address are stored with bpf_skb_store_bytes. Rules count packets and bytes, sessions
 * packets; fragments pass untranslated, malformed headers are dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define ETH_HLEN 14

enum { S_TCP, S_UDP, S_NO_RULE, S_FRAGMENT, S_TRUNCATED, S_MALFORMED, S_COLLISION, S_FAILED, S_MAX };

struct snat_config {
	bool enabled;
	bool track_sessions;
};

struct L4Ports {
	__be16 sport;
	__be16 dport;
};

struct SnatKey {
	__be32 addr;
	__be16 port;
	__u8 proto;
};

struct SnatRule {
	__be32 nat_addr;
	__be16 nat_port;
	__u64 packets;
	__u64 bytes;
};

struct SessionKey {
	__be32 peer_addr;
	__be32 nat_addr;
	__be16 peer_port;
	__be16 nat_port;
	__u8 proto;
};

struct Session {
	__be32 orig_addr;
	__be16 orig_port;
	__u64 packets;
};

struct snat_config snat SEC(".data.snat") = {
	.enabled = true,
	.track_sessions = true,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct SnatKey);
	__type(value, struct SnatRule);
} snat_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct SessionKey);
	__type(value, struct Session);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tcx/egress")
int snat_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 hlen, l4, l4_min, csum_off;
	__u64 csum_flags;
	struct SessionKey sk;
	struct SnatKey key;
	struct SnatRule *rule;
	struct Session *s = NULL;
	struct L4Ports ports;
	__be32 saddr, daddr, new_addr;
	__be16 new_port;
	__u8 proto;

	if (!snat.enabled)
		return TC_ACT_OK;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->version != 4)
		return TC_ACT_OK;
	proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		count(S_FRAGMENT);
		return TC_ACT_OK;
	}
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip)) {
		count(S_MALFORMED);
		return TC_ACT_SHOT;
	}
	saddr = ip->saddr;
	daddr = ip->daddr;

	l4 = ETH_HLEN + hlen;
	if (proto == IPPROTO_TCP) {
		l4_min = sizeof(struct tcphdr);
		csum_off = l4 + offsetof(struct tcphdr, check);
		csum_flags = 0;
	} else {
		l4_min = sizeof(struct udphdr);
		csum_off = l4 + offsetof(struct udphdr, check);
		csum_flags = BPF_F_MARK_MANGLED_0;
	}
	if (l4 + l4_min > skb->len) {
		count(S_TRUNCATED);
		return TC_ACT_OK;
	}
	if (bpf_skb_load_bytes(skb, l4, &ports, sizeof(ports))) {
		count(S_TRUNCATED);
		return TC_ACT_OK;
	}

	__builtin_memset(&key, 0, sizeof(key));
	key.addr = saddr;
	key.port = ports.sport;
	key.proto = proto;
	rule = bpf_map_lookup_elem(&snat_rules, &key);
	if (!rule) {
		key.port = 0;
		rule = bpf_map_lookup_elem(&snat_rules, &key);
	}
	if (!rule) {
		count(S_NO_RULE);
		return TC_ACT_OK;
	}
	new_addr = rule->nat_addr;
	new_port = rule->nat_port ? rule->nat_port : ports.sport;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.peer_addr = daddr;
	sk.nat_addr = new_addr;
	sk.peer_port = ports.dport;
	sk.nat_port = new_port;
	sk.proto = proto;
	if (snat.track_sessions) {
		s = bpf_map_lookup_elem(&sessions, &sk);
		if (s && (s->orig_addr != saddr || s->orig_port != ports.sport)) {
			count(S_COLLISION);
			return TC_ACT_SHOT;
		}
	}

	/* the L4 checksum covers the pseudo-header's source address and the source port */
	if (bpf_l4_csum_replace(skb, csum_off, saddr, new_addr, csum_flags | BPF_F_PSEUDO_HDR | 4)) {
		count(S_FAILED);
		return TC_ACT_SHOT;
	}
	if (new_port != ports.sport) {
		if (bpf_l4_csum_replace(skb, csum_off, ports.sport, new_port, csum_flags | 2) ||
		    bpf_skb_store_bytes(skb, l4, &new_port, sizeof(new_port), 0)) {
			count(S_FAILED);
			return TC_ACT_SHOT;
		}
	}
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, saddr, new_addr, 4) ||
	    bpf_skb_store_bytes(skb, IP_SADDR_OFF, &new_addr, sizeof(new_addr), 0)) {
		count(S_FAILED);
		return TC_ACT_SHOT;
	}

	rule->packets += 1;
	rule->bytes += skb->len;
	if (snat.track_sessions) {
		if (s) {
			s->packets += 1;
		} else {
			struct Session ns;

			__builtin_memset(&ns, 0, sizeof(ns));
			ns.orig_addr = saddr;
			ns.orig_port = ports.sport;
			ns.packets = 1;
			bpf_map_update_elem(&sessions, &sk, &ns, BPF_ANY);
		}
	}
	count(proto == IPPROTO_TCP ? S_TCP : S_UDP);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
