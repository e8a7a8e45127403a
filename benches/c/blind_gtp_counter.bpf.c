// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind_gtp_counter.ks: GTP-U accounting on tc
 * ingress. The GTP-U header is copied out with bpf_skb_load_bytes, the optional fields and
 * the extension-header chain are walked with direct packet access; G-PDUs are counted per
 * TEID (packets, GTP payload bytes) and per inner IPv4 protocol, other messages as
 * signalling, malformed GTP-U is dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define GTP_VERSION_1 1
#define GTP_FLAG_PT 0x10
#define GTP_FLAG_E 0x04
#define GTP_FLAG_S 0x02
#define GTP_FLAG_PN 0x01
#define GTP_TPDU 255
#define MAX_EXT_HDRS 4

/* the mandatory 8 bytes of a GTP-U header */
struct gtp1_hdr {
	__u8 flags;
	__u8 msg_type;
	__be16 length;
	__u8 teid[4];
};

struct TeidStats {
	__u64 packets;
	__u64 bytes;
};

/* config gtpu { port: u16 = 2152 } */
struct gtpu_config {
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct TeidStats);
} teid_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} inner_protocols SEC(".maps");

struct gtpu_config gtpu SEC(".data.gtpu") = {
	.port = 2152,
};

__u64 gtp_packets = 0;
__u64 signalling = 0;
__u64 malformed = 0;
__u64 ext_headers = 0;
__u64 inner_not_ipv4 = 0;

static __always_inline int drop_malformed(void)
{
	__sync_fetch_and_add(&malformed, 1);
	return TC_ACT_SHOT;
}

SEC("tcx/ingress")
int gtp_counter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct TeidStats *st;
	struct gtp1_hdr gtp;
	struct udphdr *udp;
	__u32 teid, ihl, gtp_off, off, proto;
	__u8 *inner;
	__u64 *cnt;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return TC_ACT_OK;
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (bpf_ntohs(udp->dest) != gtpu.port)
		return TC_ACT_OK;

	gtp_off = sizeof(*eth) + ihl + sizeof(*udp);
	if (bpf_skb_load_bytes(skb, gtp_off, &gtp, sizeof(gtp)) < 0)
		return drop_malformed();
	__sync_fetch_and_add(&gtp_packets, 1);
	if ((gtp.flags >> 5) != GTP_VERSION_1 || !(gtp.flags & GTP_FLAG_PT))
		return drop_malformed();
	if (gtp.msg_type != GTP_TPDU) {
		__sync_fetch_and_add(&signalling, 1);
		return TC_ACT_OK;
	}
	teid = (__u32)gtp.teid[0] << 24 | (__u32)gtp.teid[1] << 16 | (__u32)gtp.teid[2] << 8 |
	       gtp.teid[3];

	off = gtp_off + sizeof(gtp);
	if (gtp.flags & (GTP_FLAG_E | GTP_FLAG_S | GTP_FLAG_PN)) {
		/* sequence number (2), N-PDU number (1), next extension header type (1) */
		__u8 *opt = data + off;
		__u8 next_type = 0;

		if ((void *)(opt + 4) > data_end)
			return drop_malformed();
		if (gtp.flags & GTP_FLAG_E)
			next_type = opt[3];
		off += 4;
		for (int i = 0; i < MAX_EXT_HDRS && next_type; i++) {
			__u8 *ext = data + off, *last;
			__u32 last_off;

			if ((void *)(ext + 1) > data_end)
				return drop_malformed();
			if (*ext == 0)
				return drop_malformed();
			/* length in 4-byte units; the last byte is the next header's type */
			last_off = *ext * 4 - 1;
			/* keep the -1 in the variable offset: folded into the load (ext + 4 * n, then a
			 * load at -1) it is a negative packet offset, which the verifier refuses */
			barrier_var(last_off);
			last = ext + last_off;
			if ((void *)(last + 1) > data_end)
				return drop_malformed();
			next_type = *last;
			off += last_off + 1;
			__sync_fetch_and_add(&ext_headers, 1);
		}
		if (next_type)		/* a longer chain than we follow */
			return drop_malformed();
	}

	inner = data + off;
	if ((void *)(inner + 20) > data_end)
		return drop_malformed();

	st = bpf_map_lookup_elem(&teid_stats, &teid);
	if (st) {
		st->packets += 1;
		st->bytes += bpf_ntohs(gtp.length);
	} else {
		struct TeidStats fresh = { .packets = 1, .bytes = bpf_ntohs(gtp.length) };

		bpf_map_update_elem(&teid_stats, &teid, &fresh, BPF_ANY);
	}

	if ((inner[0] >> 4) != 4) {
		__sync_fetch_and_add(&inner_not_ipv4, 1);
		return TC_ACT_OK;
	}
	proto = inner[9];
	cnt = bpf_map_lookup_elem(&inner_protocols, &proto);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
