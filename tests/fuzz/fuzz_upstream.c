/* libFuzzer: replies from upstream proxies are untrusted network input. The first byte picks
 * the parser (or the whole handshake against a peer that sends the rest and hangs up: SOCKS5
 * lock-step or pipelined, HTTP CONNECT, either parked as a session kept ready and resumed with
 * early bytes; or the client-address parser); the rest is the input. */
#include "net.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* mode: bit 0 pipelined, bit 1 HTTP CONNECT, bit 2 parked then resumed with early bytes */
static void handshake(const uint8_t *data, size_t size, unsigned mode)
{
	static const uint8_t early[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct upstream_target t;
	struct upstream_hs hs;
	struct sockaddr_in *s = (struct sockaddr_in *)&t.addr;
	uint32_t want = 0;
	enum upstream_result r = UP_IN_PROGRESS;
	int sv[2], guard = 0;

	/* beyond the 8 KiB reply buffer; a socketpair holds it all */
	if (size > 12288 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	memset(&t, 0, sizeof(t));
	s->sin_family = AF_INET;
	s->sin_port = htons(80);
	s->sin_addr.s_addr = htonl(0xcb00710a);
	assert(write(sv[1], data, size) == (ssize_t)size);
	shutdown(sv[1], SHUT_WR);
	upstream_hs_init(&hs, mode & 2 ? UPSTREAM_HTTP : UPSTREAM_SOCKS5, &t, size & 1 ? "user" : "", "pass");
	hs.pipeline = mode & 1;
	hs.park = (mode & 4) != 0;
	for (; guard < 64 && r == UP_IN_PROGRESS; guard++)
		r = upstream_hs_step(&hs, sv[0], &want);
	if (r == UP_OK && upstream_hs_parked(&hs)) { /* a connection comes for the session kept ready */
		/* refused only for a proxy that spoke out of turn while parked (the relay drops it) */
		if (upstream_hs_resume(&hs, &t, early, sizeof(early) - 1) < 0) {
			assert(hs.in_len > 0);
			goto out;
		}
		r = UP_IN_PROGRESS;
		for (; guard < 128 && r == UP_IN_PROGRESS; guard++)
			r = upstream_hs_step(&hs, sv[0], &want);
		assert(!upstream_hs_parked(&hs));
	}
	/* the peer hung up after its bytes: the handshake always ends, never reads past its buffer */
	assert(r != UP_IN_PROGRESS);
	assert(hs.in_len <= sizeof(hs.in));
	if (r == UP_OK)
		assert(hs.in_len <= size);
out:
	close(sv[0]);
	close(sv[1]);
}

static void client_ip(const uint8_t *data, size_t size)
{
	char in[64], canon[NET_IP_STR_MAX], again[NET_IP_STR_MAX];
	const char *why = NULL;

	if (size >= sizeof(in))
		return;
	memcpy(in, data, size);
	in[size] = '\0';
	if (net_client_ip(in, NULL, canon, &why) == 0) /* canonical means a fixed point */
		assert(net_client_ip(canon, NULL, again, &why) == 0 && strcmp(canon, again) == 0);
	else
		assert(why != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void udp_datagram(const uint8_t *data, size_t size)
{
	struct sockaddr_storage from, back;
	uint8_t hdr[64];
	size_t off = 0;
	int r = socks5_udp_parse(data, size, &from, &off);

	assert(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r != 0)
		return;
	assert(off <= size && (from.ss_family == AF_INET || from.ss_family == AF_INET6));
	/* what parses, builds back to the same header */
	r = socks5_udp_header(hdr, sizeof(hdr), &from);
	assert(r > 0 && (size_t)r == off && memcmp(hdr, data, off) == 0);
	assert(socks5_udp_parse(hdr, (size_t)r, &back, &off) == 0 && memcmp(&back, &from, sizeof(back)) == 0);
}

static uint16_t port_of(const struct sockaddr_storage *s)
{
	return ntohs(s->ss_family == AF_INET ? ((const struct sockaddr_in *)s)->sin_port
					     : ((const struct sockaddr_in6 *)s)->sin6_port);
}

static void udp_associate(const uint8_t *data, size_t size)
{
	struct upstream_target t;
	struct upstream_hs hs;
	uint32_t want = 0;
	enum upstream_result r = UP_IN_PROGRESS;
	int sv[2];

	if (size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	memset(&t, 0, sizeof(t));
	t.addr.ss_family = AF_INET;
	assert(write(sv[1], data, size) == (ssize_t)size);
	shutdown(sv[1], SHUT_WR);
	upstream_hs_init(&hs, UPSTREAM_SOCKS5, &t, "", "");
	hs.cmd = SOCKS5_CMD_UDP_ASSOCIATE;
	for (int guard = 0; guard < 64 && r == UP_IN_PROGRESS; guard++)
		r = upstream_hs_step(&hs, sv[0], &want);
	assert(r != UP_IN_PROGRESS);
	assert(hs.bound.ss_family == 0 || hs.bound.ss_family == AF_INET || hs.bound.ss_family == AF_INET6);
	if (r == UP_OK) { /* where the datagrams go: BND.ADDR, or the proxy's own address for 0.0.0.0 / :: */
		struct sockaddr_storage proxy, relay;
		struct sockaddr_in *p4 = (struct sockaddr_in *)&proxy;
		memset(&proxy, 0, sizeof(proxy));
		p4->sin_family = AF_INET;
		p4->sin_addr.s_addr = htonl(0xc6336401); /* 198.51.100.1 */
		p4->sin_port = htons(1080);
		if (socks5_udp_relay(&hs.bound, &proxy, &relay) == 0) {
			char b[NET_IP_STR_MAX + 8], rl[NET_IP_STR_MAX + 8];
			int unspecified = hs.bound.ss_family == AF_INET
					      ? ((struct sockaddr_in *)&hs.bound)->sin_addr.s_addr == 0
					      : IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&hs.bound)->sin6_addr);
			net_sa_ip_str(&relay, rl);
			if (unspecified) { /* the proxy's own address, at BND.PORT */
				assert(relay.ss_family == AF_INET &&
				       p4->sin_addr.s_addr == ((struct sockaddr_in *)&relay)->sin_addr.s_addr);
				assert(port_of(&relay) == port_of(&hs.bound));
			} else { /* BND.ADDR and BND.PORT as they are */
				net_sa_ip_str(&hs.bound, b);
				assert(strcmp(b, rl) == 0 && port_of(&relay) == port_of(&hs.bound));
			}
			assert(port_of(&relay) != 0);
		}
	}
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t v;
	int st, r;

	if (size < 1)
		return 0;
	switch (data[0] % 9) {
	case 4:
	case 5:
		handshake(data + 1, size - 1, (data[0] % 9 == 5) | ((data[0] / 9) & 6));
		return 0;
	case 7: /* a datagram from a SOCKS5 UDP relay */
		udp_datagram(data + 1, size - 1);
		return 0;
	case 8: /* the UDP ASSOCIATE handshake: its relay address read from the final reply */
		udp_associate(data + 1, size - 1);
		return 0;
	case 6:
		client_ip(data + 1, size - 1);
		return 0;
	case 0:
		r = socks5_parse_method(data + 1, size - 1, &v);
		break;
	case 1:
		r = socks5_parse_auth(data + 1, size - 1, &v);
		break;
	case 2:
		r = socks5_parse_connect(data + 1, size - 1, &v);
		break;
	case 3:
		r = http_parse_connect((const char *)data + 1, size - 1, &st);
		if (r > 0)
			assert(st >= 100 && st <= 599);
		break;
	default:
		return 0;
	}
	assert(r == -EBADMSG || (r >= 0 && (size_t)r <= size - 1));
	return 0;
}
