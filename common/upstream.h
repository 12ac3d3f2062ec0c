/* upstream.h - the client side of SOCKS5 (RFC 1928, RFC 1929 auth) and HTTP CONNECT (Basic
 * auth), shared by pgw-forwarder and pgw-healthd. Builders and reply parsers are pure (buffer
 * in, struct out) so tests and fuzzers drive them; upstream_hs_* is a non-blocking handshake
 * state machine over a connected socket. Lock-step by default: one message, then its reply
 * (some servers, microsocks among them, drop bytes that arrive ahead of their turn). With
 * hs->pipeline set, a SOCKS5 greeting, auth and CONNECT go out in one write (the method is
 * known: exactly one is offered) and the replies are read in turn: one round trip instead of
 * two or three, for proxies known to take it (pgw-healthd finds out, migration 0006). */
#ifndef PGW_UPSTREAM_H
#define PGW_UPSTREAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum upstream_type { UPSTREAM_SOCKS5 = 0, UPSTREAM_HTTP = 1 };

/* Outcomes, also the close reasons and health errors the API, logs and metrics show. */
enum upstream_result {
	UP_OK = 0,
	UP_IN_PROGRESS,
	UP_ERR_CONNECT_REFUSED, /* the proxy itself refused the TCP connection */
	UP_ERR_CONNECT,		/* other connect errors (unreachable...) */
	UP_ERR_TIMEOUT,
	UP_ERR_AUTH,	      /* credentials rejected (SOCKS5 auth failure, HTTP 407) */
	UP_ERR_NO_METHOD,     /* SOCKS5: none of our methods acceptable */
	UP_ERR_PROXY_REFUSED, /* the proxy refused the CONNECT (SOCKS5 REP != 0, HTTP non-2xx) */
	UP_ERR_BAD_REPLY,     /* not the protocol */
	UP_ERR_CLOSED,	      /* the proxy closed mid-handshake */
	UP_ERR_IO,
	UP_RESULT_MAX
};
const char *upstream_result_str(enum upstream_result r);

#define UPSTREAM_CRED_MAX 255
#define UPSTREAM_HOST_MAX 255

struct upstream_target {
	/* either an address (family != 0) or a host name */
	struct sockaddr_storage addr;
	char host[UPSTREAM_HOST_MAX + 1];
	uint16_t port; /* used with host */
};

/* ---- pure builders: bytes written, or -ENOSPC / -EINVAL ---- */
int socks5_build_greeting(uint8_t *buf, size_t cap, int with_auth);
int socks5_build_auth(uint8_t *buf, size_t cap, const char *user, const char *pass);
int socks5_build_connect(uint8_t *buf, size_t cap, const struct upstream_target *t);
/* A request with another command: SOCKS5_CMD_UDP_ASSOCIATE (RFC 1928 7). */
#define SOCKS5_CMD_CONNECT	 1
#define SOCKS5_CMD_UDP_ASSOCIATE 3
int socks5_build_request(uint8_t *buf, size_t cap, uint8_t cmd, const struct upstream_target *t);
/* The header of a datagram to the UDP relay (RFC 1928 7): RSV, FRAG 0, dst's ATYP, address and
 * port. Bytes written, or -EINVAL. */
int socks5_udp_header(uint8_t *buf, size_t cap, const struct sockaddr_storage *dst);
/* A datagram from the UDP relay: 0 with the far side's address in from and its data at
 * buf + *data_off; -EBADMSG (short, reserved bytes set, unknown or name address type, from
 * port 0) or
 * -EPROTONOSUPPORT (a fragment: dropped, RFC 1928 7). */
int socks5_udp_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *from, size_t *data_off);
/* Where to send datagrams after UDP ASSOCIATE: the reply's BND.ADDR:BND.PORT, or the proxy's own
 * address with BND.PORT when BND.ADDR is 0.0.0.0 or ::. 0, or -EINVAL (no usable address). */
int socks5_udp_relay(const struct sockaddr_storage *bound, const struct sockaddr_storage *proxy,
		     struct sockaddr_storage *out);
/* Greeting (one method), auth when user is set, CONNECT: the one write of a pipelined handshake
 * (t NULL: greeting and auth only, for a session kept ready). */
int socks5_build_pipelined(uint8_t *buf, size_t cap, const char *user, const char *pass,
			   const struct upstream_target *t);
int http_build_connect(char *buf, size_t cap, const struct upstream_target *t, const char *user, const char *pass);

/* ---- pure parsers: bytes consumed (> 0), 0 when more bytes are needed, or -EBADMSG ---- */
int socks5_parse_method(const uint8_t *buf, size_t len, uint8_t *method);
int socks5_parse_auth(const uint8_t *buf, size_t len, uint8_t *status);
/* rep: the REP field (0 = succeeded). A refusal (REP not 0) is taken from its first two bytes,
 * with all of len consumed. */
int socks5_parse_connect(const uint8_t *buf, size_t len, uint8_t *rep);
/* Status line and headers up to the blank line (at most 8 KiB); status: 100..599. */
int http_parse_connect(const char *buf, size_t len, int *status);

/* ---- the handshake over a non-blocking, connecting or connected socket ---- */
struct upstream_hs {
	enum upstream_type type;
	int state, next;
	uint8_t out[2048]; /* an HTTP CONNECT to a 255-byte name with a 255+255-byte login: 1,264 */
	size_t out_len, out_off;
	uint8_t in[8192];
	size_t in_len;
	const char *user, *pass; /* not owned; empty strings for no auth */
	struct upstream_target target;
	int detail;		       /* SOCKS5 REP or HTTP status of a refusal, errno of an I/O error */
	int pipeline;		       /* set after upstream_hs_init: SOCKS5 messages in one write */
	uint8_t cmd;		       /* set after upstream_hs_init: SOCKS5_CMD_UDP_ASSOCIATE instead of CONNECT */
	struct sockaddr_storage bound; /* the final reply's BND.ADDR/BND.PORT (UDP ASSOCIATE: the relay) */
	int park;		       /* set after upstream_hs_init: stop before the request (upstream_hs_parked) */
	const uint8_t *early;	       /* not owned: bytes sent right behind the request, in the same write */
	size_t early_len, early_off;
	int out_early;	  /* the message in out[] carries the request: early follows it */
	int send_blocked; /* the message in out[] met EAGAIN: its reply may be in before it is all sent */
	int drained;	  /* the last recv took less than it asked: no bytes were left (more come with
			   * an edge: the relay need not try it first, unless a FIN, reset or error was
			   * signalled: its EOF is still to be read, with no edge of its own) */
};

void upstream_hs_init(struct upstream_hs *hs, enum upstream_type type, const struct upstream_target *t,
		      const char *user, const char *pass);
/* Drive the handshake after an event on fd. UP_IN_PROGRESS: wait for *want (EPOLLIN or
 * EPOLLOUT) and call again. UP_OK: the tunnel is up; hs->in[0..in_len) holds bytes the
 * proxy already sent from the far side (give them to the client first). */
enum upstream_result upstream_hs_step(struct upstream_hs *hs, int fd, uint32_t *want);
/* A handshake begun with hs->park set stops where the request would go (SOCKS5: after the
 * method, and the auth when offered; HTTP: once connected) and upstream_hs_step returns UP_OK
 * with upstream_hs_parked() true: a session kept ready for a connection that has not come yet.
 * upstream_hs_resume sends the request for t, then early[0..early_len) (the client's first
 * bytes, for proxies known to take them ahead of the reply; not copied: keep them until
 * UP_OK) in one write; step on from there. -EINVAL when not parked or the request does not fit. */
int upstream_hs_parked(const struct upstream_hs *hs);
int upstream_hs_resume(struct upstream_hs *hs, const struct upstream_target *t, const uint8_t *early, size_t early_len);
/* RFC 1928 6: a SOCKS5 reply code's meaning ("connection refused"), or "unassigned". */
const char *socks5_reply_str(int rep);
/* A failed handshake as one reason: upstream_result_str(), a refusal with its detail:
 * "proxy_refused (SOCKS5 0x05 connection refused)", "proxy_refused (HTTP 502)". */
void upstream_reason(const struct upstream_hs *hs, enum upstream_result r, char *buf, size_t len);
/* 1 when the proxy works but could not reach the destination (SOCKS5 0x03-0x06: network or
 * host unreachable, connection refused, TTL expired; HTTP 502-504) or its policy refused this
 * one (SOCKS5 0x02 not allowed by its ruleset, 0x08 address type; HTTP 403): the destination's
 * failure, not the proxy's. */
int upstream_dest_refusal(const struct upstream_hs *hs, enum upstream_result r);
/* Wipe credentials copies and buffers. */
void upstream_hs_wipe(struct upstream_hs *hs);

#endif
