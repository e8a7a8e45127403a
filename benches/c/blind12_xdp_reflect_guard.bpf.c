// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind12_xdp_reflect_guard.ks: IPv4/UDP datagrams from
 * the chargen, NTP, CLDAP, SSDP and memcached ports are counted per port and judged reflection
 * traffic when their payload is over `reflect.max_payload`, when they are NTP mode 7, or when
 * they come from chargen with an all-printable start of payload (up to `reflect.scan_len`
 * bytes, at most 32, as far as the frame holds them). Those are counted per port and per
 * destination and dropped when their port's bit is set in `reflect.enforce`. UDP lengths
 * below 8 are dropped as malformed; later fragments are counted and pass. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define PORT_CHARGEN 19
#define PORT_NTP 123
#define PORT_CLDAP 389
#define PORT_SSDP 1900
#define PORT_MEMCACHED 11211

enum {
	SLOT_CHARGEN = 0,
	SLOT_NTP = 1,
	SLOT_CLDAP = 2,
	SLOT_SSDP = 3,
	SLOT_MEMCACHED = 4,
	SLOT_NONE = 5,
};

#define NTP_MODE_PRIVATE 7
#define MAX_SCAN 32

/* config reflect { max_payload: u16, scan_len: u8, enforce: u8 } */
struct reflect_config {
	__u16 max_payload;
	__u8 scan_len;
	__u8 enforce;
};

struct reflect_config reflect SEC(".data.reflect") = {
	.max_payload = 512,
	.scan_len = 16,
	.enforce = 0x1F,
};

/* slot -> datagrams from that reflector port */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} port_packets SEC(".maps");

/* slot -> datagrams judged reflection traffic */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} port_drops SEC(".maps");

/* destination address (host order) -> datagrams judged so */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} victims SEC(".maps");

/* .bss, in declaration order */
__u64 fragments = 0;
__u64 malformed = 0;
__u64 oversize = 0;
__u64 signatures = 0;
__u64 monitored = 0;

static __always_inline __u32 reflector_slot(__u16 port)
{
	switch (port) {
	case PORT_CHARGEN:
		return SLOT_CHARGEN;
	case PORT_NTP:
		return SLOT_NTP;
	case PORT_CLDAP:
		return SLOT_CLDAP;
	case PORT_SSDP:
		return SLOT_SSDP;
	case PORT_MEMCACHED:
		return SLOT_MEMCACHED;
	}
	return SLOT_NONE;
}

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *cnt = bpf_map_lookup_elem(map, &key);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
}

/* m[key] += 1 on a hash map: atomic add, inserting the entry when missing */
static __always_inline void hash_inc(void *map, __u32 key)
{
	__u64 one = 1, *val = bpf_map_lookup_elem(map, &key);

	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	if (!bpf_map_update_elem(map, &key, &one, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("xdp")
int reflect_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u8 *payload;
	__u32 slot, udp_len, payload_len;
	bool reflection = false;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff)) {
		__sync_fetch_and_add(&fragments, 1);
		return XDP_PASS;
	}
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	slot = reflector_slot(bpf_ntohs(udp->source));
	if (slot == SLOT_NONE)
		return XDP_PASS;
	array_inc(&port_packets, slot);

	udp_len = bpf_ntohs(udp->len);
	if (udp_len < 8) {
		__sync_fetch_and_add(&malformed, 1);
		return XDP_DROP;
	}
	payload_len = udp_len - 8;
	payload = (__u8 *)(udp + 1);

	if (payload_len > reflect.max_payload) {
		__sync_fetch_and_add(&oversize, 1);
		reflection = true;
	} else if (slot == SLOT_NTP) {
		if ((void *)(payload + 1) <= data_end && payload_len >= 1 &&
		    (payload[0] & 0x07) == NTP_MODE_PRIVATE) {
			__sync_fetch_and_add(&signatures, 1);
			reflection = true;
		}
	} else if (slot == SLOT_CHARGEN) {
		__u32 n = reflect.scan_len, i;
		bool printable = true;

		if (n > MAX_SCAN)
			n = MAX_SCAN;
		if (n > payload_len)
			n = payload_len;
		/* the pattern holds while every byte is printable: stop at the first that is not */
		for (i = 0; i < n; i++) {
			__u8 c;

			if ((void *)(payload + i + 1) > data_end)
				break;
			c = payload[i];
			if (c < 32 || c > 126) {
				printable = false;
				break;
			}
		}
		if (i > 0 && printable) {
			__sync_fetch_and_add(&signatures, 1);
			reflection = true;
		}
	}

	if (!reflection)
		return XDP_PASS;
	array_inc(&port_drops, slot);
	hash_inc(&victims, bpf_ntohl(ip->daddr));
	if ((reflect.enforce >> slot) & 1)
		return XDP_DROP;
	__sync_fetch_and_add(&monitored, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
