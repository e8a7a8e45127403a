// SPDX-License-Identifier: GPL-2.0
/* Twin of benches/programs/blind13_xdp_mqtt_guard.ks: MQTT CONNECT screening in XDP. IPv4
 * TCP payload to the broker port is parsed as MQTT (fixed header, remaining-length varint,
 * CONNECT variable header); well-formed CONNECTs are counted per source in an LRU hash and
 * dropped past the configured limit; bad names/levels are dropped, other malformed packets
 * dropped in strict mode, cut fields pass. One outcome per frame in a per-CPU array of
 * structs. The .ks throwing readers become functions returning a fault code; the deferred
 * record() runs at the one exit, with the final outcome. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

#define MQTT_CONNECT 1
#define MQTT_PUBLISH 3
#define MQTT_PUBREL 6
#define MQTT_SUBSCRIBE 8
#define MQTT_UNSUBSCRIBE 10

#define PROTO_MQTT 0x4d515454 /* "MQTT" */

/* no XDP frame reaches this far; bounds the offset for the verifier */
#define MAX_OFF 0x3fff

#define CF_RESERVED 0x01
#define CF_CLEAN 0x02
#define CF_WILL 0x04
#define CF_WILL_QOS 0x18
#define CF_WILL_RETAIN 0x20
#define CF_PASSWORD 0x40
#define CF_USERNAME 0x80

enum {
	O_NOT_MQTT = 0,
	O_EMPTY = 1,
	O_MESSAGE = 2,
	O_ACCEPTED = 3,
	O_OVER_LIMIT = 4,
	O_BAD_PROTOCOL = 5,
	O_MALFORMED = 6,
	O_TRUNCATED = 7,
};

enum {
	F_CUT = 1,
	F_BAD_TYPE = 2,
	F_BAD_FLAGS = 3,
	F_BAD_LENGTH = 4,
	F_OTHER_PROTOCOL = 5,	/* protocol name or level */
	F_BAD_CONN_FLAGS = 6,
	F_BAD_CLIENT_ID = 7,
};

struct mqtt_config {
	__u16 port;
	__u32 max_connects;
	__u16 max_client_id;
	bool strict;
};

struct mqtt_config mqtt SEC(".data.mqtt") = {
	.port = 1883,
	.max_connects = 5,
	.max_client_id = 23,
	.strict = true,
};

struct Connect {
	__u8 level;
	__u8 flags;
	__u16 keepalive;
	__u16 id_len;
};

struct Client {
	__u64 connects;
	__u64 rejected;
	__u16 keepalive;
	__u8 level;
};

struct OutcomeStats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct Client);
} clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct OutcomeStats);
} outcome_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} packet_types SEC(".maps");

/* The byte at frame offset off; end is where the IP datagram ends. */
static __always_inline int read_u8(struct xdp_md *ctx, __u32 off, __u32 end, __u8 *out)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p;

	if (off >= end || off > MAX_OFF)
		return F_CUT;
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return F_CUT;
	*out = *p;
	return 0;
}

static __always_inline int read_u16(struct xdp_md *ctx, __u32 off, __u32 end, __u16 *out)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p;

	if (off + 2 > end || off > MAX_OFF)
		return F_CUT;
	p = data + off;
	if ((void *)(p + 2) > data_end)
		return F_CUT;
	*out = (__u16)p[0] << 8 | p[1];
	return 0;
}

static __always_inline int read_varint(struct xdp_md *ctx, __u32 off, __u32 end, __u32 *value,
				       __u32 *len)
{
	__u32 v = 0;
	__u8 b;
	int i, err;

	for (i = 0; i < 4; i++) {
		err = read_u8(ctx, off + i, end, &b);
		if (err)
			return err;
		v |= (__u32)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*value = v;
			*len = i + 1;
			return 0;
		}
	}
	return F_BAD_LENGTH;
}

static __always_inline int check_fixed_header(__u8 ptype, __u8 flags)
{
	bool ok;

	switch (ptype) {
	case 0:
		return F_BAD_TYPE;
	case MQTT_PUBLISH:
		ok = (flags & 0x06) != 0x06;
		break;
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		ok = flags == 2;
		break;
	default:
		ok = flags == 0;
	}
	return ok ? 0 : F_BAD_FLAGS;
}

/* The CONNECT variable header at off, followed by rem bytes of the packet. */
static __always_inline int parse_connect(struct xdp_md *ctx, __u32 off, __u32 end, __u32 rem,
					 struct Connect *c)
{
	__u16 name_len, hi, lo, keepalive, id_len;
	__u32 id_off, props, props_len;
	__u8 level, flags, last;
	int err;

	if (rem < 12)
		return F_BAD_LENGTH;
	if ((err = read_u16(ctx, off, end, &name_len)))
		return err;
	if (name_len != 4)
		return F_OTHER_PROTOCOL;
	if ((err = read_u16(ctx, off + 2, end, &hi)))
		return err;
	if ((err = read_u16(ctx, off + 4, end, &lo)))
		return err;
	if (((__u32)hi << 16 | lo) != PROTO_MQTT)
		return F_OTHER_PROTOCOL;
	if ((err = read_u8(ctx, off + 6, end, &level)))
		return err;
	if (level != 4 && level != 5)
		return F_OTHER_PROTOCOL;
	if ((err = read_u8(ctx, off + 7, end, &flags)))
		return err;
	if ((flags & CF_RESERVED) || (flags & CF_WILL_QOS) == CF_WILL_QOS)
		return F_BAD_CONN_FLAGS;
	if (!(flags & CF_WILL) && (flags & (CF_WILL_QOS | CF_WILL_RETAIN)))
		return F_BAD_CONN_FLAGS;
	/* 3.1.1: no password without a user name */
	if (level == 4 && (flags & (CF_PASSWORD | CF_USERNAME)) == CF_PASSWORD)
		return F_BAD_CONN_FLAGS;
	if ((err = read_u16(ctx, off + 8, end, &keepalive)))
		return err;
	id_off = off + 10;
	if (level == 5) {
		/* MQTT 5 properties: skipped */
		if ((err = read_varint(ctx, id_off, end, &props, &props_len)))
			return err;
		id_off += props_len + props;
	}
	if ((err = read_u16(ctx, id_off, end, &id_len)))
		return err;
	if (id_len > mqtt.max_client_id)
		return F_BAD_CLIENT_ID;
	if (id_len == 0 && !(flags & CF_CLEAN))
		return F_BAD_CLIENT_ID;
	if (id_off + 2 + id_len > off + rem)
		return F_BAD_LENGTH;
	/* the id's last byte is in the segment */
	if (id_len > 0 && (err = read_u8(ctx, id_off + 1 + id_len, end, &last)))
		return err;
	c->level = level;
	c->flags = flags;
	c->keepalive = keepalive;
	c->id_len = id_len;
	return 0;
}

SEC("xdp")
int mqtt_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	__u32 outcome = O_NOT_MQTT;
	int verdict = XDP_PASS;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct OutcomeStats *st;
	struct tcphdr *tcp;
	struct Client *cl;
	struct Connect c;
	__u32 src, hlen, thlen, tot, off, end, rem, rem_len, key;
	__u64 connects, *cnt;
	__u8 b0, ptype;
	int err;

	if ((void *)(ip + 1) > data_end)
		goto out;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
		goto out;
	hlen = ip->ihl * 4;
	tcp = (void *)ip + hlen;
	if ((void *)(tcp + 1) > data_end)
		goto out;
	if (tcp->dest != bpf_htons(mqtt.port))
		goto out;
	src = ip->saddr;
	thlen = tcp->doff * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (thlen < 20 || tot < hlen + thlen) {
		outcome = O_MALFORMED;
		verdict = mqtt.strict ? XDP_DROP : XDP_PASS;
		goto out;
	}
	off = sizeof(*eth) + hlen + thlen;
	end = sizeof(*eth) + tot;
	if (off == end) {
		outcome = O_EMPTY;
		goto out;
	}

	if ((err = read_u8(ctx, off, end, &b0)))
		goto fault;
	ptype = b0 >> 4;
	if ((err = check_fixed_header(ptype, b0 & 0x0f)))
		goto fault;
	if ((err = read_varint(ctx, off + 1, end, &rem, &rem_len)))
		goto fault;
	key = ptype;
	cnt = bpf_map_lookup_elem(&packet_types, &key);
	if (cnt)
		*cnt += 1;
	if (ptype != MQTT_CONNECT) {
		outcome = O_MESSAGE;
		goto out;
	}
	if ((err = parse_connect(ctx, off + 1 + rem_len, end, rem, &c)))
		goto fault;

	cl = bpf_map_lookup_elem(&clients, &src);
	if (cl) {
		cl->connects += 1;
		cl->keepalive = c.keepalive;
		cl->level = c.level;
		connects = cl->connects;
	} else {
		struct Client fresh;

		__builtin_memset(&fresh, 0, sizeof(fresh));
		fresh.connects = 1;
		fresh.keepalive = c.keepalive;
		fresh.level = c.level;
		bpf_map_update_elem(&clients, &src, &fresh, BPF_ANY);
		connects = 1;
	}
	if (connects > mqtt.max_connects) {
		outcome = O_OVER_LIMIT;
		verdict = XDP_DROP;
		goto out;
	}
	outcome = O_ACCEPTED;
	goto out;

fault:
	if (err == F_CUT) {
		outcome = O_TRUNCATED;
		goto out;
	}
	cl = bpf_map_lookup_elem(&clients, &src);
	if (cl)
		cl->rejected += 1;
	if (err == F_OTHER_PROTOCOL) {
		outcome = O_BAD_PROTOCOL;
		verdict = XDP_DROP;
	} else {
		outcome = O_MALFORMED;
		verdict = mqtt.strict ? XDP_DROP : XDP_PASS;
	}

out:
	st = bpf_map_lookup_elem(&outcome_stats, &outcome);
	if (st) {
		st->packets += 1;
		st->bytes += len;
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
