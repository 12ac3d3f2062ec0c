/* libFuzzer: what the kernel answers a route request (net_route_answer, common/net.c; read by
 * every check of where a proxy, a webhook or a relayed datagram may go), and what it tells the
 * address and route groups (net_own_event: the UDP relay judges its flows again when an address
 * may have become the gateway's own; 1 exactly when the second reading finds a new address or a
 * new local or anycast route of the local, main or default table among the whole messages). Any bytes, asked as the
 * answer to the first message's own request and to another: the result is the one a second,
 * independent reading (byte offsets, written here from rtnetlink(7) and netlink(7)) gives —
 * the first message to that request decides (one whose length is not padded to 4 bytes, as the
 * kernel's always are, is malformed); an error is "nowhere" only for unreachable or forbidden, a
 * route only for its interface when unicast or local and that interface is named (an RTA_OIF of
 * exactly 4 bytes, its type read without the nested and byte-order flags, as libmnl reads it);
 * nothing read past the bytes given (ASan, in what is built here). */
#include "net.h"

#include <assert.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

#define ALIGN4(n) (((n) + 3u) & ~3u)

/* the second reading: the result and the route's kind (RTN_UNSPEC without one) */
static int oracle(const uint8_t *b, size_t size, uint32_t seq, uint32_t port, unsigned char *type)
{
	size_t off = 0;

	*type = RTN_UNSPEC;
	while (size - off >= 16) {
		uint32_t len = u32(b + off);
		uint16_t kind = u16(b + off + 4);

		if (len < 16 || len > size - off)
			return -2; /* cut short: no whole message more */
		if (u32(b + off + 8) == seq && u32(b + off + 12) == port) {
			if (len != ALIGN4(len))
				return -1;
			if (kind == NLMSG_ERROR) {
				int32_t err;
				if (len < 16 + 4 + 16) /* the error code and the request's header */
					return -1;
				memcpy(&err, b + off + 16, 4);
				err = -err;
				return err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES ? 0 : -1;
			}
			if (kind == RTM_NEWROUTE) {
				size_t at = off + 16 + 12, end = off + len; /* after the 12-byte rtmsg */
				unsigned char rt;
				int32_t oif = -1;

				if (len < 16 + 12)
					return -1;
				rt = b[off + 16 + 7]; /* family, dst_len, src_len, tos, table, protocol, scope, type */
				*type = rt;
				while (end - at >= 4) {
					uint16_t alen = u16(b + at), atype = u16(b + at + 2) & 0x3fff;
					if (alen < 4 || alen > end - at)
						break;
					if (atype == RTA_OIF && alen == 8)
						memcpy(&oif, b + at + 4, 4);
					if (ALIGN4(alen) >= end - at)
						break;
					at += ALIGN4(alen);
				}
				if (rt == RTN_UNREACHABLE || rt == RTN_BLACKHOLE || rt == RTN_PROHIBIT ||
				    rt == RTN_THROW)
					return 0;
				if (rt != RTN_UNICAST && rt != RTN_LOCAL)
					return -1;
				return oif > 0 ? oif : -1;
			}
			return -1;
		}
		if (ALIGN4(len) >= size - off)
			return -2;
		off += ALIGN4(len);
	}
	return -2;
}

/* the second reading of what the groups said */
static int own_oracle(const uint8_t *b, size_t size)
{
	size_t off = 0;

	while (size - off >= 16) {
		uint32_t len = u32(b + off);
		uint16_t kind = u16(b + off + 4);

		if (len < 16 || len > size - off)
			return 0;
		if (kind == RTM_NEWADDR)
			return 1;
		if (kind == RTM_NEWROUTE && len >= 16 + 12 &&
		    (b[off + 23] == RTN_LOCAL || b[off + 23] == RTN_ANYCAST) &&
		    (b[off + 20] == RT_TABLE_LOCAL || b[off + 20] == RT_TABLE_MAIN || b[off + 20] == RT_TABLE_DEFAULT))
			return 1;
		if (ALIGN4(len) >= size - off)
			return 0;
		off += ALIGN4(len);
	}
	return 0;
}

static void one(const uint8_t *buf, size_t size, uint32_t seq, uint32_t port)
{
	unsigned char type, want_type;
	int got = net_route_answer(buf, size, seq, port, &type), want = oracle(buf, size, seq, port, &want_type);

	assert(got == want);
	assert(got == -2 || type == want_type);
	assert(got >= -2);
	assert(got <= 0 || type == RTN_UNICAST || type == RTN_LOCAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t *buf;

	if (size > 65536)
		return 0;
	buf = malloc(size ? size : 1); /* aligned, as the kernel's answer is */
	memcpy(buf, data, size);
	if (size >= 16)
		one((const uint8_t *)buf, size, u32(data + 8), u32(data + 12));
	one((const uint8_t *)buf, size, 1, 4242);
	assert(net_own_event(buf, size) == own_oracle((const uint8_t *)buf, size));
	free(buf);
	return 0;
}
