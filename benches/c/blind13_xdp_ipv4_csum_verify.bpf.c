// SPDX-License-Identifier: GPL-2.0
/* Hand-written C twin of benches/programs/blind13_xdp_ipv4_csum_verify.ks: validates IHL,
 * header and total length against the frame, then the one's complement sum over the IHL * 2
 * header words. One result per IPv4 packet (ok, bad checksum, bad length, options present),
 * each dropped when its config flag says so; verified headers counted per protocol (packets,
 * bytes), bad checksums per protocol. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

enum {
	RESULT_OK = 0,
	RESULT_BAD_CSUM = 1,
	RESULT_BAD_LENGTH = 2,
	RESULT_OPTIONS = 3,
};

/* config csum_check { drop_bad_csum: bool, drop_bad_length: bool, drop_options: bool } */
struct csum_check_config {
	bool drop_bad_csum;
	bool drop_bad_length;
	bool drop_options;
};

struct csum_check_config csum_check SEC(".data.csum_check") = {
	.drop_bad_csum = true,
	.drop_bad_length = true,
	.drop_options = false,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_bad_csum SEC(".maps");

/* .bss, in declaration order */
__u64 ipv4_packets = 0;
__u64 non_ipv4 = 0;
__u64 bad_version = 0;
__u64 truncated = 0;
__u64 dropped = 0;
__u64 option_words = 0;

/* m[k] += n on a hash map: atomic add, or insert when missing */
static __always_inline void hash_add(void *map, __u32 key, __u64 n)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val) {
		__sync_fetch_and_add(val, n);
		return;
	}
	if (!bpf_map_update_elem(map, &key, &n, BPF_NOEXIST))
		return;
	val = bpf_map_lookup_elem(map, &key);
	if (val)
		__sync_fetch_and_add(val, n);
}

static __always_inline void array_inc(void *map, __u32 key)
{
	__u64 *val = bpf_map_lookup_elem(map, &key);

	if (val)
		__sync_fetch_and_add(val, 1);
}

static __always_inline int verdict(__u32 result, bool drop)
{
	array_inc(&results, result);
	if (drop) {
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int ipv4_csum_verify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u16 *words;
	__u32 ihl, hlen, tot_len, sum = 0, proto, i;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ipv4, 1);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&ipv4_packets, 1);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return verdict(RESULT_BAD_LENGTH, csum_check.drop_bad_length);
	}
	if (ip->version != 4) {
		__sync_fetch_and_add(&bad_version, 1);
		return XDP_PASS;
	}
	ihl = ip->ihl;
	hlen = ihl * 4;
	if (ihl < 5)
		return verdict(RESULT_BAD_LENGTH, csum_check.drop_bad_length);
	if ((void *)ip + hlen > data_end) {
		__sync_fetch_and_add(&truncated, 1);
		return verdict(RESULT_BAD_LENGTH, csum_check.drop_bad_length);
	}
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hlen || tot_len > (__u64)(data_end - (void *)ip))
		return verdict(RESULT_BAD_LENGTH, csum_check.drop_bad_length);

	/* one's complement sum over the header, checksum field included; the sum of the
	 * words as they lie in memory is 0xffff exactly when it is in network order */
	words = (__u16 *)ip;
	for (i = 0; i < 30; i++) {
		__u16 *w = words + i;

		if (i >= ihl * 2)
			break;
		if ((void *)(w + 1) > data_end)
			return XDP_PASS;
		sum += *w;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);

	proto = ip->protocol;
	if (sum != 0xffff) {
		hash_add(&proto_bad_csum, proto, 1);
		return verdict(RESULT_BAD_CSUM, csum_check.drop_bad_csum);
	}
	array_inc(&proto_packets, proto);
	hash_add(&proto_bytes, proto, tot_len);
	if (ihl > 5) {
		__sync_fetch_and_add(&option_words, ihl - 5);
		return verdict(RESULT_OPTIONS, csum_check.drop_options);
	}
	return verdict(RESULT_OK, false);
}

char LICENSE[] SEC("license") = "GPL";
