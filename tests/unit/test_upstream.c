/* The SOCKS5 / HTTP CONNECT client: builders, reply parsers, and the handshake state machine
 * against a scripted peer on a real socket pair (what the peer sends is fixed by each test). */
#include "testlib.h"

#include "upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/epoll.h>

static struct upstream_target target4(const char *ip, uint16_t port)
{
	struct upstream_target t;
	struct sockaddr_in *s = (struct sockaddr_in *)&t.addr;

	memset(&t, 0, sizeof(t));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	return t;
}

static void test_socks5_builders(void **state)
{
	uint8_t b[600];
	struct upstream_target t = target4("203.0.113.10", 80), h;
	struct sockaddr_in6 *s6;

	(void)state;
	assert_int_equal(socks5_build_greeting(b, sizeof(b), 0), 3);
	assert_memory_equal(b, "\x05\x01\x00", 3);
	assert_int_equal(socks5_build_greeting(b, sizeof(b), 1), 3);
	assert_memory_equal(b, "\x05\x01\x02", 3);
	assert_int_equal(socks5_build_auth(b, sizeof(b), "pgwuser", "pgwpass"), 17);
	assert_memory_equal(b, "\x01\x07pgwuser\x07pgwpass", 17);
	assert_int_equal(socks5_build_auth(b, sizeof(b), "", "x"), -EINVAL);
	assert_int_equal(socks5_build_connect(b, sizeof(b), &t), 10);
	assert_memory_equal(b, "\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 10);
	memset(&h, 0, sizeof(h));
	s6 = (struct sockaddr_in6 *)&h.addr;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8:203::10", &s6->sin6_addr);
	assert_int_equal(socks5_build_connect(b, sizeof(b), &h), 22);
	assert_int_equal(b[3], 4);
	memset(&h, 0, sizeof(h));
	strcpy(h.host, "example.test");
	h.port = 8080;
	assert_int_equal(socks5_build_connect(b, sizeof(b), &h), 19);
	assert_memory_equal(b,
			    "\x05\x01\x00\x03\x0c"
			    "example.test\x1f\x90",
			    19);
}

static void test_http_builder(void **state)
{
	char b[1024];
	struct upstream_target t = target4("203.0.113.10", 80), bad;

	(void)state;
	assert_true(http_build_connect(b, sizeof(b), &t, "pgwuser", "pgwpass") > 0);
	assert_string_equal(b, "CONNECT 203.0.113.10:80 HTTP/1.1\r\nHost: 203.0.113.10:80\r\n"
			       "Proxy-Authorization: Basic cGd3dXNlcjpwZ3dwYXNz\r\n\r\n");
	assert_true(http_build_connect(b, sizeof(b), &t, "", "") > 0);
	assert_null(strstr(b, "Proxy-Authorization"));
	assert_int_equal(http_build_connect(b, sizeof(b), &t, "a:b", "c"), -EINVAL); /* ':' cannot be encoded */
	memset(&bad, 0, sizeof(bad));
	strcpy(bad.host, "evil\r\nX-Injected: 1");
	bad.port = 80;
	assert_int_equal(http_build_connect(b, sizeof(b), &bad, "", ""), -EINVAL); /* no header injection */
}

static void test_socks5_parsers(void **state)
{
	uint8_t v;

	(void)state;
	assert_int_equal(socks5_parse_method((const uint8_t *)"\x05", 1, &v), 0);
	assert_int_equal(socks5_parse_method((const uint8_t *)"\x05\x02", 2, &v), 2);
	assert_int_equal(v, 2);
	assert_int_equal(socks5_parse_method((const uint8_t *)"\x04\x00", 2, &v), -EBADMSG);
	assert_int_equal(socks5_parse_auth((const uint8_t *)"\x01\x01", 2, &v), 2);
	assert_int_equal(v, 1);
	/* IPv4 reply is 10 bytes; partial is "more please" */
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x00\x00\x01\x01\x02\x03", 7, &v), 0);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x00\x00\x01\x01\x02\x03\x04\x00\x50", 10, &v), 10);
	assert_int_equal(v, 0);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x05\x00\x03\x03"
							       "abc\x00\x50",
					      10, &v),
			 10);
	assert_int_equal(v, 5);
	/* a refusal counts from its first two bytes, whatever follows (an address type 0, nothing) */
	v = 0;
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x04", 2, &v), 2);
	assert_int_equal(v, 4);
	v = 0;
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x05\x00\x00\x00\x00", 6, &v), 6);
	assert_int_equal(v, 5);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05", 1, &v), 0);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x04\x05\x00\x01\x00", 5, &v), -EBADMSG);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x00\x00\x09\x00\x00\x00", 7, &v), -EBADMSG);
	assert_int_equal(socks5_parse_connect((const uint8_t *)"\x05\x00\x01\x01\x00\x00\x00", 7, &v), -EBADMSG);
}

static void test_http_parser(void **state)
{
	const char *ok = "HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\nDATA";
	char big[9000];
	int st;

	(void)state;
	assert_int_equal(http_parse_connect(ok, strlen(ok), &st), (int)strlen(ok) - 4);
	assert_int_equal(st, 200);
	assert_int_equal(http_parse_connect("HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", 46, &st), 46);
	assert_int_equal(st, 407);
	assert_int_equal(http_parse_connect("HTTP/1.1 200 OK\r\n", 17, &st), 0); /* headers not finished */
	assert_int_equal(http_parse_connect("HTTP/1.1 200", 12, &st), 0);
	assert_int_equal(http_parse_connect("SSH-2.0-OpenSSH\r\n\r\n", 19, &st), -EBADMSG);
	assert_int_equal(http_parse_connect("HTTP/1.1 2x0 OK\r\n\r\n", 19, &st), -EBADMSG);
	assert_int_equal(http_parse_connect("HTTP/1.1 099 Hm\r\n\r\n", 19, &st), -EBADMSG);
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	assert_int_equal(http_parse_connect(big, sizeof(big), &st), -EBADMSG); /* endless headers */
}

/* Drive a handshake where the peer's bytes are scripted: after each client message the test
 * sends the next scripted reply. Returns the final result. */
struct script {
	const char *reply[4];
	size_t len[4];
	int close_after; /* close the peer after this many replies (-1: never) */
};

/* what the peer read before each of its replies, in the last run_hs */
static size_t read_before[4];

static enum upstream_result run_hs(int pipeline, enum upstream_type type, const char *user, const char *pass,
				   const struct script *sc, struct upstream_hs *hs, char *seen, size_t seen_cap)
{
	struct upstream_target t = target4("203.0.113.10", 80);
	enum upstream_result r;
	uint32_t want = 0;
	int sv[2], replies = 0;
	size_t seen_len = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(read_before, 0, sizeof(read_before));
	upstream_hs_init(hs, type, &t, user, pass);
	hs->pipeline = pipeline;
	for (int guard = 0; guard < 20; guard++) {
		r = upstream_hs_step(hs, sv[0], &want);
		if (r != UP_IN_PROGRESS)
			break;
		if (want == EPOLLIN) { /* the client waits: the peer reads what it got and answers */
			ssize_t n = read(sv[1], seen + seen_len, seen_cap - seen_len);
			if (n > 0)
				seen_len += (size_t)n;
			if (sc->close_after == replies) {
				close(sv[1]);
				sv[1] = -1;
				continue;
			}
			assert_true(replies < 4 && sc->reply[replies]);
			read_before[replies] = n > 0 ? (size_t)n : 0;
			assert_int_equal(write(sv[1], sc->reply[replies], sc->len[replies]), (ssize_t)sc->len[replies]);
			replies++;
		}
	}
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return r;
}

#define run(...) run_hs(0, __VA_ARGS__)

static void test_socks5_handshake_paths(void **state)
{
	struct upstream_hs hs;
	char seen[512];
	const struct script ok = {{"\x05\x02", "\x01\x00",
				   "\x05\x00\x00\x01\xc6\x33\x64\x0a\x04\x38"
				   "early"},
				  {2, 2, 15},
				  -1};
	const struct script badpass = {{"\x05\x02", "\x01\x01"}, {2, 2}, -1};
	const struct script refused = {{"\x05\x00", "\x05\x05\x00\x01\0\0\0\0\0\0"}, {2, 10}, -1};
	const struct script nomethod = {{"\x05\xff"}, {2}, -1};
	const struct script garbage = {{"HTTP/1.1 400 Bad\r\n\r\n"}, {20}, -1};
	const struct script hangup = {{"\x05\x02"}, {2}, 1};
	/* refusals as some servers send them: the two bytes alone, then the close; an address type 0 */
	const struct script refused_short = {{"\x05\x00", "\x05\x04"}, {2, 2}, 2};
	const struct script refused_atyp0 = {{"\x05\x00", "\x05\x05\x00\x00"}, {2, 4}, -1};

	(void)state;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(run(UPSTREAM_SOCKS5, "pgwuser", "pgwpass", &ok, &hs, seen, sizeof(seen)), UP_OK);
	/* lock-step: greeting, then auth, then the request, each after its reply */
	assert_memory_equal(seen, "\x05\x01\x02\x01\x07pgwuser\x07pgwpass\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 30);
	assert_int_equal(read_before[0], 3);  /* the greeting alone */
	assert_int_equal(read_before[1], 17); /* then the login alone */
	assert_int_equal(read_before[2], 10); /* then the request */
	assert_int_equal(hs.in_len, 5);	      /* bytes from the far side, kept for the client */
	assert_memory_equal(hs.in, "early", 5);
	assert_int_equal(run(UPSTREAM_SOCKS5, "pgwuser", "wrong", &badpass, &hs, seen, sizeof(seen)), UP_ERR_AUTH);
	assert_int_equal(run(UPSTREAM_SOCKS5, "", "", &refused, &hs, seen, sizeof(seen)), UP_ERR_PROXY_REFUSED);
	assert_int_equal(hs.detail, 5);
	/* the destination's failure, not the proxy's (a bad reply or a close would blame the proxy);
	 * no bound address taken from a refusal */
	assert_int_equal(run(UPSTREAM_SOCKS5, "", "", &refused_short, &hs, seen, sizeof(seen)), UP_ERR_PROXY_REFUSED);
	assert_int_equal(hs.detail, 4);
	assert_int_equal(hs.bound.ss_family, 0);
	assert_int_equal(upstream_dest_refusal(&hs, UP_ERR_PROXY_REFUSED), 1);
	assert_int_equal(run(UPSTREAM_SOCKS5, "", "", &refused_atyp0, &hs, seen, sizeof(seen)), UP_ERR_PROXY_REFUSED);
	assert_int_equal(hs.detail, 5);
	assert_int_equal(hs.bound.ss_family, 0);
	assert_int_equal(run(UPSTREAM_SOCKS5, "", "", &nomethod, &hs, seen, sizeof(seen)), UP_ERR_NO_METHOD);
	assert_int_equal(run(UPSTREAM_SOCKS5, "", "", &garbage, &hs, seen, sizeof(seen)), UP_ERR_BAD_REPLY);
	assert_int_equal(run(UPSTREAM_SOCKS5, "u", "p", &hangup, &hs, seen, sizeof(seen)), UP_ERR_CLOSED);
	assert_string_equal(upstream_result_str(UP_ERR_AUTH), "auth_failed");
}

/* Pipelined: everything in the first write; the replies may come together or one by one. */
static void test_socks5_pipelined(void **state)
{
	struct upstream_hs hs;
	char seen[512];
	const struct script together = {{"\x05\x02\x01\x00\x05\x00\x00\x01\xc6\x33\x64\x0a\x04\x38"
					 "early"},
					{19},
					-1};
	const struct script apart = {
	    {"\x05\x02", "\x01\x00", "\x05\x00\x00\x01\xc6\x33\x64\x0a\x04\x38"}, {2, 2, 10}, -1};
	const struct script noauth = {{"\x05\x00\x05\x00\x00\x01\0\0\0\0\0\0"}, {12}, -1};
	const struct script badpass = {{"\x05\x02\x01\x01"}, {4}, -1};
	const struct script wrongmethod = {{"\x05\x00\x05\x00\x00\x01\0\0\0\0\0\0"}, {12}, -1};
	const struct script silent_after_method = {{"\x05\x02"}, {2}, 1}; /* microsocks: the rest dropped */
	uint8_t b[1024];
	struct upstream_target t = target4("203.0.113.10", 80);

	(void)state;
	assert_int_equal(socks5_build_pipelined(b, sizeof(b), "pgwuser", "pgwpass", &t), 30);
	assert_int_equal(socks5_build_pipelined(b, sizeof(b), "", "", &t), 13);
	assert_int_equal(socks5_build_pipelined(b, 20, "pgwuser", "pgwpass", &t), -ENOSPC);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(run_hs(1, UPSTREAM_SOCKS5, "pgwuser", "pgwpass", &together, &hs, seen, sizeof(seen)), UP_OK);
	/* all three messages before the first reply */
	assert_memory_equal(seen, "\x05\x01\x02\x01\x07pgwuser\x07pgwpass\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 30);
	assert_int_equal(hs.in_len, 5);
	assert_memory_equal(hs.in, "early", 5);
	assert_int_equal(run_hs(1, UPSTREAM_SOCKS5, "pgwuser", "pgwpass", &apart, &hs, seen, sizeof(seen)), UP_OK);
	assert_int_equal(hs.in_len, 0);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(run_hs(1, UPSTREAM_SOCKS5, "", "", &noauth, &hs, seen, sizeof(seen)), UP_OK);
	assert_memory_equal(seen, "\x05\x01\x00\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 13);
	assert_int_equal(run_hs(1, UPSTREAM_SOCKS5, "pgwuser", "x", &badpass, &hs, seen, sizeof(seen)), UP_ERR_AUTH);
	/* we offered user/password only: a server that picks "none" is not the protocol */
	assert_int_equal(run_hs(1, UPSTREAM_SOCKS5, "pgwuser", "pgwpass", &wrongmethod, &hs, seen, sizeof(seen)),
			 UP_ERR_BAD_REPLY);
	assert_int_equal(
	    run_hs(1, UPSTREAM_SOCKS5, "pgwuser", "pgwpass", &silent_after_method, &hs, seen, sizeof(seen)),
	    UP_ERR_CLOSED);
}

static void test_http_handshake_paths(void **state)
{
	struct upstream_hs hs;
	char seen[512];
	const struct script ok = {{"HTTP/1.1 200 Connection established\r\n\r\nhello"}, {44}, -1};
	const struct script auth = {{"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"}, {47}, -1};
	const struct script forbidden = {{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"}, {45}, -1};

	(void)state;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(run(UPSTREAM_HTTP, "pgwuser", "pgwpass", &ok, &hs, seen, sizeof(seen)), UP_OK);
	assert_non_null(strstr(seen, "Proxy-Authorization: Basic cGd3dXNlcjpwZ3dwYXNz\r\n"));
	assert_int_equal(hs.in_len, 5);
	assert_int_equal(run(UPSTREAM_HTTP, "pgwuser", "x", &auth, &hs, seen, sizeof(seen)), UP_ERR_AUTH);
	assert_int_equal(run(UPSTREAM_HTTP, "", "", &forbidden, &hs, seen, sizeof(seen)), UP_ERR_PROXY_REFUSED);
	assert_int_equal(hs.detail, 403);
}

/* The longest HTTP CONNECT the API and settings allow (a 255-byte name, a 255-byte user and
 * password): it fits the handshake's buffer and goes out whole (it once did not: io_error) */
static void test_http_longest(void **state)
{
	struct upstream_hs hs;
	struct upstream_target t;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1], seen[4096], want_line[300];
	uint32_t want = 0;
	int sv[2];
	ssize_t n;

	(void)state;
	memset(&t, 0, sizeof(t));
	memset(t.host, 'h', UPSTREAM_HOST_MAX);
	t.port = 443;
	memset(user, 'u', UPSTREAM_CRED_MAX);
	user[UPSTREAM_CRED_MAX] = '\0';
	memset(pass, 'p', UPSTREAM_CRED_MAX);
	pass[UPSTREAM_CRED_MAX] = '\0';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	upstream_hs_init(&hs, UPSTREAM_HTTP, &t, user, pass);
	assert_int_equal(upstream_hs_step(&hs, sv[0], &want), UP_IN_PROGRESS);
	assert_int_equal(want, EPOLLIN); /* sent: now the reply */
	n = read(sv[1], seen, sizeof(seen) - 1);
	assert_true(n > 1200);
	seen[n] = '\0';
	snprintf(want_line, sizeof(want_line), "CONNECT %s:443 HTTP/1.1\r\n", t.host);
	assert_memory_equal(seen, want_line, strlen(want_line));
	assert_non_null(strstr(seen, "Proxy-Authorization: Basic dXV1"));
	assert_int_equal(memcmp(seen + n - 4, "\r\n\r\n", 4), 0);
	close(sv[0]);
	close(sv[1]);
}

/* UDP ASSOCIATE: the request, the relay address from the reply, datagram headers both ways */
static void test_socks5_udp(void **state)
{
	static const uint8_t reply[] = {5, 1, 0, 5, 0, 0, 1, 198, 51, 100, 13, 0x9c, 0x40};
	struct upstream_target any, t4 = target4("203.0.113.53", 53);
	struct sockaddr_storage from;
	struct sockaddr_in *s;
	uint8_t b[300];
	size_t off;
	int n;

	(void)state;
	memset(&any, 0, sizeof(any));
	any.addr.ss_family = AF_INET; /* 0.0.0.0:0: our UDP address is not known yet */
	assert_int_equal(socks5_build_request(b, sizeof(b), SOCKS5_CMD_UDP_ASSOCIATE, &any), 10);
	assert_memory_equal(b, "\x05\x03\x00\x01\0\0\0\0\0\0", 10);
	n = socks5_udp_header(b, sizeof(b), &t4.addr);
	assert_int_equal(n, 10);
	assert_memory_equal(b, "\0\0\0\x01\xcb\x00\x71\x35\x00\x35", 10);
	memcpy(b + n, "dns", 3);
	assert_int_equal(socks5_udp_parse(b, (size_t)n + 3, &from, &off), 0);
	assert_int_equal(off, 10);
	s = (struct sockaddr_in *)&from;
	assert_int_equal(from.ss_family, AF_INET);
	assert_int_equal(ntohs(s->sin_port), 53);
	/* a fragment is dropped; short, reserved bytes set, a name: bad */
	b[2] = 1;
	assert_int_equal(socks5_udp_parse(b, (size_t)n + 3, &from, &off), -EPROTONOSUPPORT);
	b[2] = 0;
	b[8] = b[9] = 0; /* from port 0: no host sends from there */
	assert_int_equal(socks5_udp_parse(b, (size_t)n + 3, &from, &off), -EBADMSG);
	b[9] = 0x35;
	{ /* IPv6 too */
		static const uint8_t v6[] = {0, 0, 0,  4, 0x20, 1, 0xd, 0xb8, 0, 0,
					     0, 0, 0,  0, 0,	0, 0,	0,    0, 1, /* 2001:db8::1 */
					     0, 0, 'x'};			    /* port 0, then data */
		uint8_t w[sizeof(v6)];
		memcpy(w, v6, sizeof(v6));
		assert_int_equal(socks5_udp_parse(w, sizeof(w), &from, &off), -EBADMSG);
		w[21] = 53;
		assert_int_equal(socks5_udp_parse(w, sizeof(w), &from, &off), 0);
		assert_int_equal(from.ss_family, AF_INET6);
		assert_int_equal(off, 22);
	}
	assert_int_equal(socks5_udp_parse(b, 9, &from, &off), -EBADMSG);
	b[0] = 1;
	assert_int_equal(socks5_udp_parse(b, (size_t)n, &from, &off), -EBADMSG);
	assert_int_equal(socks5_udp_parse((const uint8_t *)"\0\0\0\x03\x03"
							   "abc\0\x35",
					  10, &from, &off),
			 -EBADMSG);
	/* the handshake keeps the relay address of the final reply */
	{
		struct upstream_hs hs;
		uint32_t want;
		enum upstream_result r = UP_IN_PROGRESS;
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
		upstream_hs_init(&hs, UPSTREAM_SOCKS5, &any, "", "");
		hs.cmd = SOCKS5_CMD_UDP_ASSOCIATE;
		/* method 0, then the reply: the relay at 198.51.100.13:40000 */
		assert_int_equal(write(sv[1], "\x05\x00", 2), 2);
		for (int i = 0; i < 8 && r == UP_IN_PROGRESS; i++) {
			want = 0;
			r = upstream_hs_step(&hs, sv[0], &want);
			if (r == UP_IN_PROGRESS && want == EPOLLIN) { /* greeting and request sent: answer */
				uint8_t req[64];
				ssize_t k = read(sv[1], req, sizeof(req));
				if (k >= 10 && req[k - 9] == SOCKS5_CMD_UDP_ASSOCIATE)
					assert_int_equal(write(sv[1], reply + 3, 10), 10);
			}
		}
		assert_int_equal(r, UP_OK);
		s = (struct sockaddr_in *)&hs.bound;
		assert_int_equal(hs.bound.ss_family, AF_INET);
		assert_int_equal(ntohs(s->sin_port), 40000);
		assert_int_equal(ntohl(s->sin_addr.s_addr), 0xc633640d);
		close(sv[0]);
		close(sv[1]);
	}
	/* where datagrams go: BND as given; 0.0.0.0 or :: means the proxy's own address, BND's port */
	{
		struct upstream_target proxy = target4("198.51.100.13", 1080), p6;
		struct sockaddr_storage bound, relay;
		struct sockaddr_in *b4 = (struct sockaddr_in *)&bound, *r4 = (struct sockaddr_in *)&relay;
		struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&bound, *r6 = (struct sockaddr_in6 *)&relay;

		memset(&p6, 0, sizeof(p6));
		p6.addr.ss_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::1", &((struct sockaddr_in6 *)&p6.addr)->sin6_addr);
		memset(&bound, 0, sizeof(bound));
		assert_int_equal(socks5_udp_relay(&bound, &proxy.addr, &relay), -EINVAL); /* no family */
		b4->sin_family = AF_INET;
		b4->sin_port = htons(40000);
		assert_int_equal(socks5_udp_relay(&bound, &proxy.addr, &relay), 0);
		assert_int_equal(ntohl(r4->sin_addr.s_addr), 0xc633640d);
		assert_int_equal(ntohs(r4->sin_port), 40000);
		b4->sin_addr.s_addr = htonl(0xcb007101);
		assert_int_equal(socks5_udp_relay(&bound, &proxy.addr, &relay), 0);
		assert_int_equal(ntohl(r4->sin_addr.s_addr), 0xcb007101);
		b4->sin_port = 0; /* no port: nowhere to send */
		assert_int_equal(socks5_udp_relay(&bound, &proxy.addr, &relay), -EINVAL);
		memset(&bound, 0, sizeof(bound));
		b6->sin6_family = AF_INET6;
		b6->sin6_port = htons(40001);
		assert_int_equal(socks5_udp_relay(&bound, &p6.addr, &relay), 0);
		assert_int_equal(relay.ss_family, AF_INET6);
		assert_int_equal(ntohs(r6->sin6_port), 40001);
		assert_memory_equal(&r6->sin6_addr, &((struct sockaddr_in6 *)&p6.addr)->sin6_addr, 16);
	}
}

/* Step until the handshake waits for the peer (EPOLLIN) or ends; what it sent lands in seen. */
static enum upstream_result step_until_wait(struct upstream_hs *hs, int fd, int peer, char *seen, size_t *seen_len)
{
	enum upstream_result r;
	uint32_t want = 0;
	ssize_t n;

	r = upstream_hs_step(hs, fd, &want);
	n = read(peer, seen + *seen_len, 512 - *seen_len);
	if (n > 0)
		*seen_len += (size_t)n;
	return r;
}

/* A session kept ready: parked after the auth (lock-step and pipelined) or the TCP connect
 * (HTTP), then resumed with the request and the client's first bytes in one write. */
static void test_park_resume(void **state)
{
	struct upstream_target none, t = target4("203.0.113.10", 80);
	const uint8_t early[] = "GET / HTTP/1.1\r\n\r\n";
	struct upstream_hs hs;
	char seen[512];
	size_t len;
	int sv[2];

	(void)state;
	memset(&none, 0, sizeof(none));
	for (int pipeline = 0; pipeline <= 1; pipeline++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
		upstream_hs_init(&hs, UPSTREAM_SOCKS5, &none, "pgwuser", "pgwpass");
		hs.pipeline = pipeline;
		hs.park = 1;
		len = 0;
		assert_int_equal(upstream_hs_resume(&hs, &t, NULL, 0), -EINVAL); /* not parked yet */
		assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
		if (!pipeline) {
			assert_int_equal(len, 3); /* the greeting alone */
			assert_int_equal(write(sv[1], "\x05\x02", 2), 2);
			assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
		} else {
			assert_int_equal(len, 3 + 17); /* greeting and auth in the first write */
			assert_int_equal(write(sv[1], "\x05\x02", 2), 2);
			assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
		}
		/* greeting and auth, no request (pipelined: in one write) */
		assert_int_equal(len, 3 + 17);
		assert_memory_equal(seen, "\x05\x01\x02\x01\x07pgwuser\x07pgwpass", 20);
		assert_int_equal(write(sv[1], "\x01\x00", 2), 2);
		assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_OK);
		assert_true(upstream_hs_parked(&hs));
		assert_int_equal(len, 20);					       /* nothing more went out */
		assert_int_equal(upstream_hs_step(&hs, sv[0], &(uint32_t){0}), UP_OK); /* stays parked */
		assert_int_equal(upstream_hs_resume(&hs, &t, early, sizeof(early) - 1), 0);
		assert_false(upstream_hs_parked(&hs));
		len = 0;
		assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
		/* the CONNECT and the client's bytes together */
		assert_int_equal(len, 10 + sizeof(early) - 1);
		assert_memory_equal(seen, "\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 10);
		assert_memory_equal(seen + 10, early, sizeof(early) - 1);
		assert_int_equal(write(sv[1], "\x05\x00\x00\x01\0\0\0\0\0\0HTTP", 14), 14);
		assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_OK);
		assert_false(upstream_hs_parked(&hs));
		assert_int_equal(hs.in_len, 4);
		close(sv[0]);
		close(sv[1]);
	}
	/* no auth: parked after the method reply */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	upstream_hs_init(&hs, UPSTREAM_SOCKS5, &none, "", "");
	hs.park = 1;
	len = 0;
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
	assert_int_equal(write(sv[1], "\x05\x00", 2), 2);
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_OK);
	assert_true(upstream_hs_parked(&hs));
	/* resume refuses a session with bytes of the proxy's pending (the forwarder ends a ready
	 * session at the first byte it gets; this guards a handshake that parked with bytes left) */
	hs.in_len = 1;
	assert_int_equal(upstream_hs_resume(&hs, &t, NULL, 0), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	/* HTTP: parked once connected, then CONNECT with the bytes behind it */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	upstream_hs_init(&hs, UPSTREAM_HTTP, &none, "u", "p");
	hs.park = 1;
	len = 0;
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_OK);
	assert_true(upstream_hs_parked(&hs));
	assert_int_equal(len, 0);
	assert_int_equal(upstream_hs_resume(&hs, &t, early, sizeof(early) - 1), 0);
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
	seen[len] = '\0';
	assert_true(len > sizeof(early) - 1);
	assert_string_equal(seen + len - (sizeof(early) - 1), (const char *)early);
	assert_true(strncmp(seen, "CONNECT 203.0.113.10:80 HTTP/1.1\r\n", 34) == 0);
	assert_non_null(strstr(seen, "Proxy-Authorization: Basic dTpw\r\n")); /* the credentials, at resume */
	assert_int_equal(write(sv[1], "HTTP/1.1 200 OK\r\n\r\n", 19), 19);
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_OK);
	close(sv[0]);
	close(sv[1]);
}

/* A big first chunk from the client and a small send buffer: the request and the bytes leave in
 * several writes, each byte once and in order; the proxy replies before the last has gone, and
 * the reply is read as soon as it has (edge-triggered callers get no second edge for it). */
static void test_early_partial_writes(void **state)
{
	struct upstream_target none, t = target4("203.0.113.10", 80);
	static uint8_t early[200000], seen[300000];
	struct upstream_hs hs;
	enum upstream_result r;
	size_t len = 0;
	int sv[2], small = 4096;
	uint32_t want = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(early); i++)
		early[i] = (uint8_t)(i * 7 + 1);
	memset(&none, 0, sizeof(none));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	upstream_hs_init(&hs, UPSTREAM_SOCKS5, &none, "", "");
	hs.park = 1;
	assert_int_equal(upstream_hs_step(&hs, sv[0], &want), UP_IN_PROGRESS);
	assert_int_equal(read(sv[1], seen, sizeof(seen)), 3);
	assert_int_equal(write(sv[1], "\x05\x00", 2), 2);
	assert_int_equal(upstream_hs_step(&hs, sv[0], &want), UP_OK);
	assert_int_equal(upstream_hs_resume(&hs, &t, early, sizeof(early)), 0);
	for (int guard = 0; guard < 10000; guard++) {
		want = 0;
		r = upstream_hs_step(&hs, sv[0], &want);
		if (r == UP_OK) /* all sent, and the reply read at once: it came while the rest went */
			break;
		assert_int_equal(r, UP_IN_PROGRESS);
		assert_int_equal(want, EPOLLOUT); /* never "wait for the reply" with the reply there */
		if (guard == 0) /* the proxy has the request: it replies before the early bytes are all in */
			assert_int_equal(write(sv[1], "\x05\x00\x00\x01\0\0\0\0\0\0", 10), 10);
		ssize_t n = read(sv[1], seen + len, sizeof(seen) - len);
		assert_true(n > 0);
		len += (size_t)n;
	}
	assert_int_equal(r, UP_OK);
	for (ssize_t n; (n = read(sv[1], seen + len, sizeof(seen) - len)) > 0;)
		len += (size_t)n;
	assert_int_equal(len, 10 + sizeof(early));
	assert_memory_equal(seen, "\x05\x01\x00\x01\xcb\x00\x71\x0a\x00\x50", 10);
	assert_memory_equal(seen + 10, early, sizeof(early));
	assert_int_equal(hs.early_off, sizeof(early));
	close(sv[0]);
	close(sv[1]);
}

/* Early bytes ride with the request only: never with a lock-step greeting or auth. */
static void test_early_not_with_greeting(void **state)
{
	struct upstream_target t = target4("203.0.113.10", 80);
	const uint8_t early[] = "EARLY";
	struct upstream_hs hs;
	char seen[512];
	size_t len = 0;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	upstream_hs_init(&hs, UPSTREAM_SOCKS5, &t, "pgwuser", "pgwpass");
	hs.early = early;
	hs.early_len = 5;
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
	assert_int_equal(len, 3); /* the greeting alone */
	assert_int_equal(write(sv[1], "\x05\x02", 2), 2);
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
	assert_int_equal(len, 3 + 17); /* the auth alone */
	assert_int_equal(write(sv[1], "\x01\x00", 2), 2);
	assert_int_equal(step_until_wait(&hs, sv[0], sv[1], seen, &len), UP_IN_PROGRESS);
	assert_int_equal(len, 20 + 10 + 5); /* the CONNECT, then the bytes */
	assert_memory_equal(seen + 30, "EARLY", 5);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_socks5_builders),
	    cmocka_unit_test(test_http_builder),
	    cmocka_unit_test(test_socks5_parsers),
	    cmocka_unit_test(test_http_parser),
	    cmocka_unit_test(test_socks5_handshake_paths),
	    cmocka_unit_test(test_http_handshake_paths),
	    cmocka_unit_test(test_http_longest),
	    cmocka_unit_test(test_socks5_pipelined),
	    cmocka_unit_test(test_socks5_udp),
	    cmocka_unit_test(test_park_resume),
	    cmocka_unit_test(test_early_partial_writes),
	    cmocka_unit_test(test_early_not_with_greeting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
