// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind5_xdp_tls_version.ks: parses TLS ClientHellos in IPv4 TCP
 * segments to the TLS port, skips session id, cipher suites and compression methods, and counts
 * complete hellos per client_version (per-CPU array) and per record version (hash); hellos that
 * run past the segment count as truncated, other records as other. Always XDP_PASS.
 * The .ks readers that throw become loads returning -1; the deferred count_inspected() runs on
 * every exit after the payload test, so it is counted right there. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define CT_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
/* No XDP frame's linear data reaches this far; bounds offsets for the verifier. */
#define MAX_OFF 0x7fff

struct tls_config {
	__u16 port;
};

struct tls_config tls SEC(".data.tls") = {
	.port = 443,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} hello_versions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
} record_versions SEC(".maps");

__u64 inspected = 0;
__u64 truncated_hellos = 0;
__u64 other_records = 0;

static __always_inline int u8_at(void *data, void *data_end, __u32 off, __u32 limit)
{
	__u8 *p;

	if (off + 1 > limit || off > MAX_OFF)
		return -1;
	/* keep the packet test: clang would drop it, knowing off < limit <= data_end - data */
	barrier_var(off);
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return -1;
	return p[0];
}

static __always_inline int be16_at(void *data, void *data_end, __u32 off, __u32 limit)
{
	__u8 *p;

	if (off + 2 > limit || off > MAX_OFF)
		return -1;
	/* keep the packet test: clang would drop it, knowing off < limit <= data_end - data */
	barrier_var(off);
	p = data + off;
	if ((void *)(p + 2) > data_end)
		return -1;
	return (p[0] << 8) | p[1];
}

static __always_inline __u32 version_slot(__u32 v)
{
	switch (v) {
	case 0x0300: return 0;
	case 0x0301: return 1;
	case 0x0302: return 2;
	case 0x0303: return 3;
	case 0x0304: return 4;
	default: return 5;
	}
}

SEC("xdp")
int tls_version(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *tcp;
	__u32 l4_off, off, limit, slot;
	int rec_ver, client_ver, n;
	__u16 key;
	__u64 *v, one = 1;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3fff))
		return XDP_PASS;
	l4_off = sizeof(*eth) + ip->ihl * 4;
	tcp = data + l4_off;
	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	if (bpf_ntohs(tcp->dest) != tls.port || tcp->doff < 5)
		return XDP_PASS;
	off = l4_off + tcp->doff * 4;
	limit = sizeof(*eth) + bpf_ntohs(ip->tot_len);
	if (off >= limit || data + limit > data_end)
		return XDP_PASS;
	__sync_fetch_and_add(&inspected, 1);

	n = u8_at(data, data_end, off, limit);
	if (n < 0)
		goto truncated;
	if (n != CT_HANDSHAKE)
		goto other;
	rec_ver = be16_at(data, data_end, off + 1, limit);
	if (rec_ver < 0)
		goto truncated;
	if ((rec_ver >> 8) != 3)
		goto other;
	n = u8_at(data, data_end, off + 5, limit);
	if (n < 0)
		goto truncated;
	if (n != HS_CLIENT_HELLO)
		goto other;
	client_ver = be16_at(data, data_end, off + 9, limit);
	if (client_ver < 0)
		goto truncated;
	/* record header 5, handshake header 4, client_version 2, random 32 */
	off += 43;
	n = u8_at(data, data_end, off, limit);		/* session id */
	if (n < 0)
		goto truncated;
	off += 1 + n;
	n = be16_at(data, data_end, off, limit);	/* cipher suites */
	if (n < 0)
		goto truncated;
	off += 2 + n;
	n = u8_at(data, data_end, off, limit);		/* compression methods */
	if (n < 0)
		goto truncated;
	off += 1 + n;
	if (off > limit)
		goto truncated;

	slot = version_slot(client_ver);
	v = bpf_map_lookup_elem(&hello_versions, &slot);
	if (v)
		*v += 1;
	key = rec_ver;
	v = bpf_map_lookup_elem(&record_versions, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else if (bpf_map_update_elem(&record_versions, &key, &one, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&record_versions, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
	return XDP_PASS;

truncated:
	__sync_fetch_and_add(&truncated_hellos, 1);
	return XDP_PASS;
other:
	__sync_fetch_and_add(&other_records, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
