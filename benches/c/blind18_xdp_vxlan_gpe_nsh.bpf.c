// SPDX-License-Identifier: GPL-2.0
/* NSH service-function forwarder fast path for VXLAN-GPE (UDP 4790)
 * (hand-written twin of blind18_xdp_vxlan_gpe_nsh.ks). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define IPPROTO_UDP_NR	17

#define VXLAN_GPE_PORT	4790
#define GPE_FLAG_P	0x04
#define GPE_NP_NSH	4

enum nsh_error {
	ERR_TRUNCATED = 1,
	ERR_VERSION = 2,
	ERR_LENGTH = 3,
	ERR_MD_TYPE = 4,
};

struct gpe_hdr {
	__u8 flags;
	__u8 reserved[2];
	__u8 next_proto;
	__u32 vni_res;
};

struct nsh_hdr {
	__be16 base;		/* Ver(2) O(1) U(1) TTL(6) Length(6) */
	__u8 md_type;		/* U(4) MD type(4) */
	__u8 next_proto;
	__be32 sph;		/* SPI(24) SI(8) */
};

struct nsh_info {
	__u32 spi;
	__u8 si;
	__u8 md_type;
	__u8 len_words;
	__u8 next_proto;
};

struct spi_stat {
	__u64 packets;
	__u64 bytes;
	__u64 expired;
	__u32 last_si;
	__u32 md_type;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct spi_stat);
} spi_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} nsh_errors SEC(".maps");

__u64 gpe_other = 0;
__u64 nsh_forwarded = 0;
__u64 nsh_expired = 0;

/* Validate the NSH base header and decode the service path header.
 * avail: frame bytes from the start of the NSH header. */
static __always_inline int decode_nsh(const struct nsh_hdr *nsh, __u32 avail,
				      struct nsh_info *info)
{
	__u16 base = bpf_ntohs(nsh->base);
	__u16 len_words = base & 0x3f;
	__u8 md = nsh->md_type & 0x0f;
	__u32 sph;

	if (base >> 14)
		return ERR_VERSION;
	if (md == 1) {
		if (len_words != 6)
			return ERR_LENGTH;
	} else if (md == 2) {
		if (len_words < 2)
			return ERR_LENGTH;
	} else {
		return ERR_MD_TYPE;
	}
	if ((__u32)len_words * 4 > avail)
		return ERR_TRUNCATED;

	sph = bpf_ntohl(nsh->sph);
	info->spi = sph >> 8;
	info->si = sph & 0xff;
	info->md_type = md;
	info->len_words = len_words;
	info->next_proto = nsh->next_proto;
	return 0;
}

/* RFC 1624 incremental checksum update for a 32-bit field (network order). */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 nfrom = ~from;
	__u32 sum = (__u16)~check + (nfrom >> 16) + (nfrom & 0xffff) + (to >> 16) + (to & 0xffff);
	__u16 res;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	res = ~sum;
	return res ? res : 0xffff;	/* a UDP checksum of 0 means "none" */
}

SEC("xdp")
int vxlan_gpe_nsh(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	struct gpe_hdr *gpe;
	struct nsh_hdr *nsh;
	struct nsh_info info;
	struct spi_stat *st;
	__u32 udp_off, nsh_off, spi, old_sph, new_sph, key;
	__u64 pkt_len, expired;
	int err;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + sizeof(*eth);

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		if (ip->ihl < 5 || ip->protocol != IPPROTO_UDP_NR)
			return XDP_PASS;
		if (ip->frag_off & bpf_htons(0x3fff))
			return XDP_PASS;
		udp_off = sizeof(*eth) + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + sizeof(*eth);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->nexthdr != IPPROTO_UDP_NR)
			return XDP_PASS;
		udp_off = sizeof(*eth) + sizeof(*ip6);
	} else {
		return XDP_PASS;
	}

	udp = data + udp_off;
	gpe = (void *)(udp + 1);
	if ((void *)(gpe + 1) > data_end)
		return XDP_PASS;
	if (udp->dest != bpf_htons(VXLAN_GPE_PORT))
		return XDP_PASS;
	if (!(gpe->flags & GPE_FLAG_P) || gpe->next_proto != GPE_NP_NSH) {
		__sync_fetch_and_add(&gpe_other, 1);
		return XDP_PASS;
	}

	nsh_off = udp_off + sizeof(*udp) + sizeof(*gpe);
	nsh = (void *)(gpe + 1);
	pkt_len = data_end - data;
	if ((void *)(nsh + 1) > data_end) {
		err = ERR_TRUNCATED;
		goto bad;
	}
	err = decode_nsh(nsh, (__u32)pkt_len - nsh_off, &info);
	if (err)
		goto bad;

	expired = info.si == 0;
	spi = info.spi;
	st = bpf_map_lookup_elem(&spi_stats, &spi);
	if (st) {
		st->packets += 1;
		st->bytes += pkt_len;
		st->expired += expired;
		st->last_si = info.si;
		st->md_type = info.md_type;
	} else {
		struct spi_stat init = {
			.packets = 1,
			.bytes = pkt_len,
			.expired = expired,
			.last_si = info.si,
			.md_type = info.md_type,
		};
		bpf_map_update_elem(&spi_stats, &spi, &init, BPF_ANY);
	}

	if (info.si == 0) {
		__sync_fetch_and_add(&nsh_expired, 1);
		return XDP_DROP;
	}

	/* SI is the low byte of the SPH and at least 1: decrementing the
	 * whole word touches only the SI. */
	old_sph = nsh->sph;
	new_sph = bpf_htonl(bpf_ntohl(old_sph) - 1);
	nsh->sph = new_sph;
	if (udp->check)
		udp->check = csum_replace4(udp->check, old_sph, new_sph);
	__sync_fetch_and_add(&nsh_forwarded, 1);
	return XDP_PASS;

bad:
	key = err;
	{
		__u64 *cnt = bpf_map_lookup_elem(&nsh_errors, &key);

		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
