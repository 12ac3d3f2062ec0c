/* upstream.c - see upstream.h. */
#include "upstream.h"

#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

enum { HS_CONNECTING, HS_SEND, HS_METHOD, HS_AUTH, HS_REPLY, HS_HTTP_REPLY, HS_DONE, HS_PARKED };

static const char *const result_names[UP_RESULT_MAX] = {
    [UP_OK] = "ok",
    [UP_IN_PROGRESS] = "in_progress",
    [UP_ERR_CONNECT_REFUSED] = "connection_refused",
    [UP_ERR_CONNECT] = "connect_failed",
    [UP_ERR_TIMEOUT] = "timeout",
    [UP_ERR_AUTH] = "auth_failed",
    [UP_ERR_NO_METHOD] = "no_acceptable_method",
    [UP_ERR_PROXY_REFUSED] = "proxy_refused",
    [UP_ERR_BAD_REPLY] = "bad_proxy_reply",
    [UP_ERR_CLOSED] = "proxy_closed",
    [UP_ERR_IO] = "io_error",
};

const char *upstream_result_str(enum upstream_result r)
{
	return (unsigned)r < UP_RESULT_MAX && result_names[r] ? result_names[r] : "unknown";
}

const char *socks5_reply_str(int rep)
{
	static const char *const names[] = {
	    "succeeded",	   "general failure",	    "not allowed by ruleset",
	    "network unreachable", "host unreachable",	    "connection refused",
	    "TTL expired",	   "command not supported", "address type not supported"};

	return rep >= 0 && (size_t)rep < sizeof(names) / sizeof(names[0]) ? names[rep] : "unassigned";
}

void upstream_reason(const struct upstream_hs *hs, enum upstream_result r, char *buf, size_t len)
{
	if (r != UP_ERR_PROXY_REFUSED)
		snprintf(buf, len, "%s", upstream_result_str(r));
	else if (hs->type == UPSTREAM_HTTP)
		snprintf(buf, len, "proxy_refused (HTTP %d)", hs->detail);
	else
		snprintf(buf, len, "proxy_refused (SOCKS5 0x%02x %s)", (unsigned)hs->detail & 0xff,
			 socks5_reply_str(hs->detail));
}

int upstream_dest_refusal(const struct upstream_hs *hs, enum upstream_result r)
{
	if (r != UP_ERR_PROXY_REFUSED)
		return 0;
	/* and the proxy's policy for this one destination: not allowed by its ruleset (a port it
	 * blocks), an address type it does not take (IPv6), CONNECT forbidden (squid's SSL_ports) */
	if (hs->type == UPSTREAM_HTTP)
		return hs->detail == 403 || hs->detail == 502 || hs->detail == 503 || hs->detail == 504;
	return (hs->detail >= 2 && hs->detail <= 6) || hs->detail == 8; /* unreachable, refused, TTL */
}

int socks5_build_greeting(uint8_t *buf, size_t cap, int with_auth)
{
	if (cap < 3)
		return -ENOSPC;
	buf[0] = 5;
	buf[1] = 1;
	buf[2] = with_auth ? 2 : 0; /* offer exactly one method: the server's choice is known */
	return 3;
}

int socks5_build_auth(uint8_t *buf, size_t cap, const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass);

	if (ul == 0 || ul > UPSTREAM_CRED_MAX || pl > UPSTREAM_CRED_MAX)
		return -EINVAL;
	if (cap < 3 + ul + pl)
		return -ENOSPC;
	buf[0] = 1;
	buf[1] = (uint8_t)ul;
	memcpy(buf + 2, user, ul);
	buf[2 + ul] = (uint8_t)pl;
	memcpy(buf + 3 + ul, pass, pl);
	return (int)(3 + ul + pl);
}

/* ATYP, DST.ADDR and DST.PORT of t at buf (room for a name checked by the callers). */
static size_t put_address(uint8_t *buf, const struct upstream_target *t, int *err)
{
	*err = 0;
	if (t->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&t->addr;
		buf[0] = 1;
		memcpy(buf + 1, &s->sin_addr, 4);
		memcpy(buf + 5, &s->sin_port, 2);
		return 7;
	}
	if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&t->addr;
		buf[0] = 4;
		memcpy(buf + 1, &s->sin6_addr, 16);
		memcpy(buf + 17, &s->sin6_port, 2);
		return 19;
	}
	{
		size_t hl = strlen(t->host);
		uint16_t port = htons(t->port);
		if (hl == 0 || hl > UPSTREAM_HOST_MAX) {
			*err = -EINVAL;
			return 0;
		}
		buf[0] = 3;
		buf[1] = (uint8_t)hl;
		memcpy(buf + 2, t->host, hl);
		memcpy(buf + 2 + hl, &port, 2);
		return 4 + hl;
	}
}

int socks5_build_request(uint8_t *buf, size_t cap, uint8_t cmd, const struct upstream_target *t)
{
	int err;
	size_t n;

	if (cap < 4 + 1 + UPSTREAM_HOST_MAX + 2)
		return -ENOSPC;
	buf[0] = 5;
	buf[1] = cmd;
	buf[2] = 0;
	n = put_address(buf + 3, t, &err);
	return err ? err : (int)(3 + n);
}

int socks5_udp_header(uint8_t *buf, size_t cap, const struct sockaddr_storage *dst)
{
	struct upstream_target t;
	int err;
	size_t n;

	if (cap < 3 + 19 || (dst->ss_family != AF_INET && dst->ss_family != AF_INET6))
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.addr = *dst;
	buf[0] = buf[1] = 0; /* RSV */
	buf[2] = 0;	     /* FRAG: whole datagrams only */
	n = put_address(buf + 3, &t, &err);
	return err ? err : (int)(3 + n);
}

/* ATYP, address and port at buf (len bytes) into sa (names refused: a relay answers with
 * addresses). Bytes read, or -EBADMSG. */
static int get_address(const uint8_t *buf, size_t len, struct sockaddr_storage *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (len >= 7 && buf[0] == 1) {
		struct sockaddr_in *s = (struct sockaddr_in *)sa;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, buf + 1, 4);
		memcpy(&s->sin_port, buf + 5, 2);
		return 7;
	}
	if (len >= 19 && buf[0] == 4) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)sa;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, buf + 1, 16);
		memcpy(&s->sin6_port, buf + 17, 2);
		return 19;
	}
	return -EBADMSG;
}

int socks5_udp_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *from, size_t *data_off)
{
	int n;

	if (len < 3 || buf[0] != 0 || buf[1] != 0)
		return -EBADMSG;
	if (buf[2] != 0)
		return -EPROTONOSUPPORT; /* a fragment: RFC 1928 7 lets a client drop what it cannot reassemble */
	n = get_address(buf + 3, len - 3, from);
	if (n < 0 || net_sa_port(from) == 0) /* (no host sends from port 0) */
		return -EBADMSG;
	*data_off = 3 + (size_t)n;
	return 0;
}

int socks5_udp_relay(const struct sockaddr_storage *bound, const struct sockaddr_storage *proxy,
		     struct sockaddr_storage *out)
{
	static const uint8_t zero[16];
	uint16_t port;

	if (bound->ss_family == AF_INET) {
		const struct sockaddr_in *b = (const struct sockaddr_in *)bound;
		if (b->sin_addr.s_addr != 0 || !b->sin_port) {
			*out = *bound;
			return b->sin_port ? 0 : -EINVAL;
		}
		port = b->sin_port;
	} else if (bound->ss_family == AF_INET6) {
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)bound;
		if (memcmp(&b->sin6_addr, zero, 16) != 0 || !b->sin6_port) {
			*out = *bound;
			return b->sin6_port ? 0 : -EINVAL;
		}
		port = b->sin6_port;
	} else {
		return -EINVAL;
	}
	/* 0.0.0.0 or ::: the relay is at the proxy's own address (RFC 1928 leaves it open) */
	*out = *proxy;
	if (out->ss_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = port;
	else if (out->ss_family == AF_INET6)
		((struct sockaddr_in6 *)out)->sin6_port = port;
	else
		return -EINVAL;
	return 0;
}

int socks5_build_connect(uint8_t *buf, size_t cap, const struct upstream_target *t)
{
	return socks5_build_request(buf, cap, SOCKS5_CMD_CONNECT, t);
}

int socks5_build_pipelined(uint8_t *buf, size_t cap, const char *user, const char *pass,
			   const struct upstream_target *t)
{
	int with_auth = user && *user, n = socks5_build_greeting(buf, cap, with_auth), m;

	if (n < 0)
		return n;
	if (with_auth) {
		m = socks5_build_auth(buf + n, cap - (size_t)n, user, pass);
		if (m < 0)
			return m;
		n += m;
	}
	if (!t) /* a session kept ready (upstream_hs_parked): the request comes later */
		return n;
	m = socks5_build_connect(buf + n, cap - (size_t)n, t);
	return m < 0 ? m : n + m;
}

static size_t base64(char *out, const uint8_t *in, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = i + 1 < len ? tbl[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int target_str(const struct upstream_target *t, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (t->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&t->addr;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		n = snprintf(buf, cap, "%s:%u", a, ntohs(s->sin_port));
	} else if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&t->addr;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		n = snprintf(buf, cap, "[%s]:%u", a, ntohs(s->sin6_port));
	} else {
		if (!t->host[0] || strpbrk(t->host, " \r\n\t"))
			return -EINVAL;
		n = snprintf(buf, cap, "%s:%u", t->host, t->port);
	}
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int http_build_connect(char *buf, size_t cap, const struct upstream_target *t, const char *user, const char *pass)
{
	char hp[UPSTREAM_HOST_MAX + 16], cred[2 * UPSTREAM_CRED_MAX + 2], b64[(2 * UPSTREAM_CRED_MAX + 2) * 4 / 3 + 8];
	int n;

	if (target_str(t, hp, sizeof(hp)) < 0)
		return -EINVAL;
	if (user && *user) {
		if (strlen(user) > UPSTREAM_CRED_MAX || strlen(pass) > UPSTREAM_CRED_MAX || strchr(user, ':'))
			return -EINVAL;
		n = snprintf(cred, sizeof(cred), "%s:%s", user, pass);
		base64(b64, (const uint8_t *)cred, (size_t)n);
		explicit_bzero(cred, sizeof(cred));
		n = snprintf(buf, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", hp,
			     hp, b64);
		explicit_bzero(b64, sizeof(b64));
	} else {
		n = snprintf(buf, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hp, hp);
	}
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int socks5_parse_method(const uint8_t *buf, size_t len, uint8_t *method)
{
	if (len < 2)
		return 0;
	if (buf[0] != 5)
		return -EBADMSG;
	*method = buf[1];
	return 2;
}

int socks5_parse_auth(const uint8_t *buf, size_t len, uint8_t *status)
{
	if (len < 2)
		return 0;
	if (buf[0] != 1 && buf[0] != 5) /* some servers answer with the SOCKS version */
		return -EBADMSG;
	*status = buf[1];
	return 2;
}

int socks5_parse_connect(const uint8_t *buf, size_t len, uint8_t *rep)
{
	size_t need;

	if (len >= 2 && buf[0] == 5 && buf[1] != 0) {
		/* a refusal: its REP is what counts, whatever follows it (some servers send the two
		 * bytes alone, or an address type 0, and close): all of it taken, nothing after it
		 * is read */
		*rep = buf[1];
		return (int)len;
	}
	if (len < 5)
		return 0;
	if (buf[0] != 5 || buf[2] != 0)
		return -EBADMSG;
	switch (buf[3]) {
	case 1:
		need = 10;
		break;
	case 4:
		need = 22;
		break;
	case 3:
		need = 7 + (size_t)buf[4];
		break;
	default:
		return -EBADMSG;
	}
	if (len < need)
		return 0;
	*rep = buf[1];
	return (int)need;
}

#define HTTP_HEADER_MAX 8192

int http_parse_connect(const char *buf, size_t len, int *status)
{
	const char *end = NULL;
	size_t scan = len < HTTP_HEADER_MAX ? len : HTTP_HEADER_MAX;
	int code;

	/* validate the status line as soon as it is complete */
	for (size_t i = 0; i + 1 < scan; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n') {
			if (i < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
			    buf[8] != ' ' || !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
			    !isdigit((unsigned char)buf[11]) || (i > 12 && buf[12] != ' '))
				return -EBADMSG;
			break;
		}
		if (buf[i] == '\0')
			return -EBADMSG;
	}
	for (size_t i = 0; i + 3 < scan; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i + 4;
			break;
		}
	}
	if (!end)
		return len >= HTTP_HEADER_MAX ? -EBADMSG : 0;
	code = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (code < 100 || code > 599)
		return -EBADMSG;
	*status = code;
	return (int)(end - buf);
}

void upstream_hs_init(struct upstream_hs *hs, enum upstream_type type, const struct upstream_target *t,
		      const char *user, const char *pass)
{
	memset(hs, 0, sizeof(*hs));
	hs->type = type;
	hs->target = *t;
	hs->user = user ? user : "";
	hs->pass = pass ? pass : "";
	hs->state = HS_CONNECTING;
	hs->cmd = SOCKS5_CMD_CONNECT;
}

void upstream_hs_wipe(struct upstream_hs *hs)
{
	explicit_bzero(hs, sizeof(*hs));
}

/* Queue the next message (n bytes in hs->out, or a builder error), to be followed by `next`. */
static enum upstream_result queue(struct upstream_hs *hs, int n, int next)
{
	if (n < 0)
		return UP_ERR_IO;
	hs->out_len = (size_t)n;
	hs->out_off = 0;
	hs->state = HS_SEND;
	hs->next = next;
	hs->out_early = 0;
	hs->send_blocked = 0;
	return UP_IN_PROGRESS;
}

/* Queue the request (the early bytes follow it in the same write). */
static enum upstream_result queue_request(struct upstream_hs *hs, int n, int next)
{
	enum upstream_result r = queue(hs, n, next);

	hs->out_early = 1;
	return r;
}

/* Stop short of the request (hs->park): the session waits for upstream_hs_resume. */
static enum upstream_result park(struct upstream_hs *hs)
{
	hs->state = HS_PARKED;
	return UP_OK;
}

int upstream_hs_parked(const struct upstream_hs *hs)
{
	return hs->state == HS_PARKED;
}

int upstream_hs_resume(struct upstream_hs *hs, const struct upstream_target *t, const uint8_t *early, size_t early_len)
{
	int n;

	if (hs->state != HS_PARKED || hs->in_len)
		return -EINVAL;
	hs->target = *t;
	hs->park = 0;
	hs->early = early;
	hs->early_len = early_len;
	hs->early_off = 0;
	if (hs->type == UPSTREAM_SOCKS5)
		n = socks5_build_request(hs->out, sizeof(hs->out), hs->cmd, &hs->target);
	else
		n = http_build_connect((char *)hs->out, sizeof(hs->out), &hs->target, hs->user, hs->pass);
	if (n < 0)
		return -EINVAL;
	queue_request(hs, n, hs->type == UPSTREAM_SOCKS5 ? HS_REPLY : HS_HTTP_REPLY);
	return 0;
}

/* Method (and auth) accepted: park, wait for the request's reply (pipelined: it went already), or
 * send the request. */
static enum upstream_result logged_in(struct upstream_hs *hs)
{
	if (hs->park)
		return park(hs);
	if (hs->pipeline) {
		hs->state = HS_REPLY;
		return UP_IN_PROGRESS;
	}
	return queue_request(hs, socks5_build_request(hs->out, sizeof(hs->out), hs->cmd, &hs->target), HS_REPLY);
}

/* Act on one complete reply. */
static enum upstream_result on_reply(struct upstream_hs *hs, uint8_t v, int status)
{
	switch (hs->state) {
	case HS_HTTP_REPLY:
		hs->detail = status;
		if (status >= 200 && status < 300)
			return UP_OK;
		return status == 407 || status == 401 ? UP_ERR_AUTH : UP_ERR_PROXY_REFUSED;
	case HS_METHOD:
		if (v == 0xff)
			return UP_ERR_NO_METHOD;
		if (v != (hs->user[0] ? 2 : 0))
			return UP_ERR_BAD_REPLY; /* a method we did not offer */
		if (hs->pipeline && v == 2) {	 /* the rest went out with the greeting: read the next reply */
			hs->state = HS_AUTH;
			return UP_IN_PROGRESS;
		}
		if (v == 2)
			return queue(hs, socks5_build_auth(hs->out, sizeof(hs->out), hs->user, hs->pass), HS_AUTH);
		return logged_in(hs);
	case HS_AUTH:
		if (v != 0)
			return UP_ERR_AUTH;
		return logged_in(hs);
	default: /* HS_REPLY */
		hs->detail = v;
		return v == 0 ? UP_OK : UP_ERR_PROXY_REFUSED;
	}
}

static enum upstream_result io_error(struct upstream_hs *hs, int err)
{
	hs->detail = err;
	return err == EPIPE || err == ECONNRESET ? UP_ERR_CLOSED : UP_ERR_IO;
}

enum upstream_result upstream_hs_step(struct upstream_hs *hs, int fd, uint32_t *want)
{
	enum upstream_result res;
	ssize_t n;
	int r;

	for (;;) {
		switch (hs->state) {
		case HS_CONNECTING: {
			int err = 0;
			socklen_t el = sizeof(err);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				err = errno;
			if (err) {
				hs->detail = err;
				return err == ECONNREFUSED ? UP_ERR_CONNECT_REFUSED : UP_ERR_CONNECT;
			}
			if (hs->type == UPSTREAM_SOCKS5 && hs->pipeline && hs->park)
				res = queue(hs,
					    socks5_build_pipelined(hs->out, sizeof(hs->out), hs->user, hs->pass, NULL),
					    HS_METHOD);
			else if (hs->type == UPSTREAM_SOCKS5 && hs->pipeline)
				res = queue_request(
				    hs,
				    socks5_build_pipelined(hs->out, sizeof(hs->out), hs->user, hs->pass, &hs->target),
				    HS_METHOD);
			else if (hs->type == UPSTREAM_SOCKS5)
				res = queue(hs, socks5_build_greeting(hs->out, sizeof(hs->out), hs->user[0] != '\0'),
					    HS_METHOD);
			else if (hs->park)
				return park(hs);
			else
				res = queue_request(hs,
						    http_build_connect((char *)hs->out, sizeof(hs->out), &hs->target,
								       hs->user, hs->pass),
						    HS_HTTP_REPLY);
			if (res != UP_IN_PROGRESS)
				return res;
			break;
		}
		case HS_SEND:
			while (hs->out_off < hs->out_len ||
			       (hs->out_early && hs->early_off < hs->early_len)) { /* the message, then early bytes */
				struct iovec iov[2];
				struct msghdr mh = {.msg_iov = iov};
				size_t k;

				if (hs->out_off < hs->out_len)
					iov[mh.msg_iovlen++] =
					    (struct iovec){hs->out + hs->out_off, hs->out_len - hs->out_off};
				if (hs->out_early && hs->early_off < hs->early_len)
					iov[mh.msg_iovlen++] = (struct iovec){(void *)(hs->early + hs->early_off),
									      hs->early_len - hs->early_off};
				n = sendmsg(fd, &mh, MSG_NOSIGNAL);
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					hs->send_blocked = 1; /* the reply may come before the rest has gone */
					*want = EPOLLOUT;
					return UP_IN_PROGRESS;
				}
				if (n < 0)
					return io_error(hs, errno);
				k = (size_t)n < hs->out_len - hs->out_off ? (size_t)n : hs->out_len - hs->out_off;
				hs->out_off += k;
				if (hs->out_early)
					hs->early_off += (size_t)n - k;
			}
			explicit_bzero(hs->out, hs->out_len); /* may have held credentials */
			hs->state = hs->next;
			if (hs->in_len == 0 && !hs->send_blocked) { /* sent at once: its reply cannot be here yet */
				*want = EPOLLIN;
				return UP_IN_PROGRESS;
			}
			break;
		case HS_METHOD:
		case HS_AUTH:
		case HS_REPLY:
		case HS_HTTP_REPLY: {
			uint8_t v = 0;
			int status = 0;

			if (hs->state == HS_METHOD)
				r = socks5_parse_method(hs->in, hs->in_len, &v);
			else if (hs->state == HS_AUTH)
				r = socks5_parse_auth(hs->in, hs->in_len, &v);
			else if (hs->state == HS_REPLY) {
				r = socks5_parse_connect(hs->in, hs->in_len, &v);
				if (r > 0 && v == 0 && get_address(hs->in + 3, (size_t)r - 3, &hs->bound) < 0)
					memset(&hs->bound, 0, sizeof(hs->bound)); /* a name: only CONNECT gives one */
			} else
				r = http_parse_connect((const char *)hs->in, hs->in_len, &status);
			if (r < 0)
				return UP_ERR_BAD_REPLY;
			if (r == 0) { /* need more bytes */
				if (hs->in_len == sizeof(hs->in))
					return UP_ERR_BAD_REPLY;
				n = recv(fd, hs->in + hs->in_len, sizeof(hs->in) - hs->in_len, 0);
				hs->drained = n > 0 && (size_t)n < sizeof(hs->in) - hs->in_len;
				if (n == 0)
					return UP_ERR_CLOSED;
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					*want = EPOLLIN;
					return UP_IN_PROGRESS;
				}
				if (n < 0)
					return io_error(hs, errno);
				hs->in_len += (size_t)n;
				break;
			}
			/* lock-step: nothing but the tunnel's first bytes may follow the final reply
			 * (pipelined: the next replies may already be here) */
			if (!hs->pipeline && hs->state != HS_REPLY && hs->state != HS_HTTP_REPLY &&
			    hs->in_len != (size_t)r)
				return UP_ERR_BAD_REPLY;
			memmove(hs->in, hs->in + r, hs->in_len - (size_t)r);
			hs->in_len -= (size_t)r;
			res = on_reply(hs, v, status);
			if (res == UP_OK && hs->state != HS_PARKED)
				hs->state = HS_DONE;
			if (res != UP_IN_PROGRESS)
				return res;
			break;
		}
		case HS_DONE:
		case HS_PARKED:
			return UP_OK;
		default:
			return UP_ERR_IO;
		}
	}
}
