/* probe.c - see probe.h. */
#include "probe.h"

#include "dnstls.h"
#include "net.h"
#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum pstate { P_HANDSHAKE, P_TLS, P_SEND, P_RECV, P_FAILED_AT_START };

struct probe {
	struct evloop *ev;
	int fd;
	struct ev_handle *h, *timer;
	enum pstate state;
	struct upstream_hs hs;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1];
	char req[1024]; /* the GET: a health URL's longest host (255) and path (255) fit, with room */
	size_t req_len, req_off;
	char resp[PROBE_BODY_MAX + 1];
	size_t resp_len;
	uint64_t t0, t_connected, t_tunnel, t_first;
	unsigned timeout_ms;
	int connected;
	gnutls_session_t tls; /* an https URL: the session over the tunnel */
	gnutls_certificate_credentials_t cred;
	char tls_host[NET_HOST_MAX + 1], tls_why[140];
	probe_done_cb cb;
	void *arg;
	struct probe_result res;
};

static int ip_token(const char *s, size_t len, char ip[PROBE_IP_MAX])
{
	unsigned char tmp[16];

	if (len == 0 || len >= PROBE_IP_MAX)
		return 0;
	memcpy(ip, s, len);
	ip[len] = '\0';
	return inet_pton(AF_INET, ip, tmp) == 1 || inet_pton(AF_INET6, ip, tmp) == 1;
}

/* The value of header name (case-insensitive) in the head of n bytes, or NULL; *vlen its length. */
static const char *header(const char *buf, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);

	for (const char *l = memchr(buf, '\n', n); l && (size_t)(l - buf) + 1 < n;
	     l = memchr(l + 1, '\n', n - (size_t)(l + 1 - buf))) {
		const char *h = l + 1, *e = memchr(h, '\n', n - (size_t)(h - buf));
		if (!e || (size_t)(e - h) <= nl || strncasecmp(h, name, nl) != 0 || h[nl] != ':')
			continue;
		h += nl + 1;
		while (h < e && (*h == ' ' || *h == '\t'))
			h++;
		*vlen = (size_t)(e - h);
		while (*vlen && (h[*vlen - 1] == '\r' || h[*vlen - 1] == ' '))
			(*vlen)--;
		return h;
	}
	return NULL;
}

/* A chunked body decoded into out (cap bytes): its length, or -1 while the last chunk has not
 * come (or the framing is broken: then -2). */
static long dechunk(const char *b, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;

	for (;;) {
		char *e;
		unsigned long sz;
		const char *nl = memchr(b + i, '\n', len - i);
		if (!nl)
			return -1;
		sz = 0;
		for (e = (char *)b + i; e < nl && isxdigit((unsigned char)*e); e++) { /* digits only, within the line */
			sz = sz * 16 + (unsigned long)(isdigit((unsigned char)*e)
							   ? *e - '0'
							   : (tolower((unsigned char)*e) - 'a' + 10));
			if (sz > PROBE_BODY_MAX)
				return -2;
		}
		if (e == b + i)
			return -2;
		i = (size_t)(nl - b) + 1;
		if (sz == 0)
			return (long)o; /* trailers, if any, are not needed */
		if (len - i < sz + 2)
			return -1;
		if (o + sz <= cap) {
			memcpy(out + o, b + i, sz);
			o += sz;
		}
		i += sz;
		if (b[i] != '\r' || b[i + 1] != '\n') /* in range: len - i >= 2 was checked */
			return -2;
		i += 2;
	}
}

int probe_response_complete(const char *buf, size_t len)
{
	char scratch[PROBE_BODY_MAX];
	const char *v;
	size_t vl;
	int status, n = http_parse_connect(buf, len, &status);

	if (n < 0)
		return 1; /* malformed: nothing more will mend it */
	if (n == 0)
		return 0;
	if (status < 200 || status == 204 || status == 304)
		return 1;
	if ((v = header(buf, (size_t)n, "Transfer-Encoding", &vl)) && vl >= 7 &&
	    strncasecmp(v + vl - 7, "chunked", 7) == 0)
		return dechunk(buf + n, len - (size_t)n, scratch, sizeof(scratch)) != -1;
	if ((v = header(buf, (size_t)n, "Content-Length", &vl))) {
		unsigned long cl = 0;
		size_t k;
		for (k = 0; k < vl && isdigit((unsigned char)v[k]) && cl <= PROBE_BODY_MAX; k++)
			cl = cl * 10 + (unsigned long)(v[k] - '0');
		return k == 0 || len - (size_t)n >= cl; /* no digits: malformed, parse what there is */
	}
	return 0;
}

enum probe_error probe_parse_response(const char *buf, size_t len, int *status, char ip[PROBE_IP_MAX])
{
	const char *body = NULL, *end = buf + len, *p, *v;
	char plain[PROBE_BODY_MAX];
	size_t vl;
	int n;

	*status = 0;
	ip[0] = '\0';
	n = http_parse_connect(buf, len, status); /* same status line + headers grammar */
	if (n <= 0)
		return PROBE_BAD_HTTP;
	body = buf + n;
	if (*status < 200 || *status > 299)
		return PROBE_HTTP_STATUS;
	if ((v = header(buf, (size_t)n, "Transfer-Encoding", &vl)) && vl >= 7 &&
	    strncasecmp(v + vl - 7, "chunked", 7) == 0) { /* the body without its chunk framing */
		long k = dechunk(body, (size_t)(end - body), plain, sizeof(plain));
		if (k < 0)
			return PROBE_BAD_HTTP;
		body = plain;
		end = plain + k;
	} else if ((v = header(buf, (size_t)n, "Content-Length", &vl))) {
		/* a body cut short (a connection closed early, TLS without close_notify: the proxy may
		 * end it anywhere) is not an answer: "203.0.113.4" of "203.0.113.45" is an address */
		unsigned long cl = 0;
		size_t k;
		for (k = 0; k < vl && isdigit((unsigned char)v[k]) && cl <= PROBE_BODY_MAX; k++)
			cl = cl * 10 + (unsigned long)(v[k] - '0');
		if (k > 0 && (size_t)(end - body) >= cl)
			end = body + cl;
		else if (k > 0 && len < PROBE_BODY_MAX) /* (a full buffer is our cut: read what it holds) */
			return PROBE_BAD_HTTP;
	}
	while (body < end && isspace((unsigned char)*body))
		body++;
	if (body < end && *body == '{') { /* {"ip":"198.51.100.10", ...} */
		p = memmem(body, (size_t)(end - body), "\"ip\"", 4);
		if (!p)
			return PROBE_UNPARSEABLE_BODY;
		p += 4;
		while (p < end && (isspace((unsigned char)*p) || *p == ':'))
			p++;
		if (p >= end || *p != '"')
			return PROBE_UNPARSEABLE_BODY;
		body = ++p;
		while (p < end && *p != '"')
			p++;
		return ip_token(body, (size_t)(p - body), ip) ? PROBE_OK : PROBE_UNPARSEABLE_BODY;
	}
	for (p = body; p < end && !isspace((unsigned char)*p); p++)
		;
	return ip_token(body, (size_t)(p - body), ip) ? PROBE_OK : PROBE_UNPARSEABLE_BODY;
}

static unsigned ms_since(uint64_t t0, uint64_t t)
{
	return t > t0 ? (unsigned)(t - t0) : 0;
}

static void finish(struct probe *p, enum probe_error e)
{
	struct probe_result *r = &p->res;
	uint64_t now = ev_now_ms();

	r->error = e;
	r->total_ms = ms_since(p->t0, now);
	r->connect_ms = p->t_connected ? ms_since(p->t0, p->t_connected) : 0;
	r->handshake_ms = p->t_tunnel ? ms_since(p->t_connected, p->t_tunnel) : 0;
	r->first_byte_ms = p->t_first ? ms_since(p->t_tunnel, p->t_first) : 0;
	switch (e) {
	case PROBE_OK:
		snprintf(r->reason, sizeof(r->reason), "ok");
		break;
	case PROBE_UPSTREAM: /* a refusal keeps its detail: the SOCKS5 reply code, the HTTP status */
		upstream_reason(&p->hs, r->up, r->reason, sizeof(r->reason));
		break;
	case PROBE_TIMEOUT:
		snprintf(r->reason, sizeof(r->reason), "timeout (%s)",
			 !p->connected		   ? "connect"
			 : p->state == P_HANDSHAKE ? "handshake"
			 : p->state == P_TLS	   ? "tls"
						   : "response");
		break;
	case PROBE_HTTP_STATUS:
		snprintf(r->reason, sizeof(r->reason), "http_status %d", r->http_status);
		break;
	case PROBE_BAD_HTTP:
		snprintf(r->reason, sizeof(r->reason), "bad_http_response");
		break;
	case PROBE_UNPARSEABLE_BODY:
		snprintf(r->reason, sizeof(r->reason), "unparseable_body");
		break;
	case PROBE_TLS:
		snprintf(r->reason, sizeof(r->reason), "tls: %s", p->tls_why);
		break;
	default:
		snprintf(r->reason, sizeof(r->reason), "internal_error");
	}
	p->cb(p, r, p->arg);
	probe_cancel(p);
}

static void on_timeout(struct evloop *ev, void *arg)
{
	(void)ev;
	finish(arg, PROBE_TIMEOUT);
}

/* Each step gets the full timeout from its own start. */
static void step_deadline(struct probe *p)
{
	ev_timer_set(p->timer, p->timeout_ms, 0);
}

static void on_io(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct probe *p = arg;
	enum upstream_result r;
	uint32_t want = 0;
	ssize_t n;

	(void)events;
	if (p->state == P_HANDSHAKE) {
		if (!p->connected) {
			int err = 0;
			socklen_t el = sizeof(err);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				err = errno;
			if (err) { /* reading SO_ERROR clears it: report here */
				p->res.up = err == ECONNREFUSED ? UP_ERR_CONNECT_REFUSED : UP_ERR_CONNECT;
				finish(p, PROBE_UPSTREAM);
				return;
			}
			p->connected = 1;
			p->t_connected = ev_now_ms();
			step_deadline(p);
		}
		r = upstream_hs_step(&p->hs, fd, &want);
		if (r == UP_IN_PROGRESS) {
			ev_mod_fd(ev, p->h, want);
			return;
		}
		if (r != UP_OK) {
			p->res.up = r;
			finish(p, PROBE_UPSTREAM);
			return;
		}
		p->t_tunnel = ev_now_ms();
		step_deadline(p);
		if (p->hs.in_len && p->tls_host[0]) { /* https: only the TLS server may speak, through TLS */
			snprintf(p->tls_why, sizeof(p->tls_why), "the proxy sent data before the TLS handshake");
			finish(p, PROBE_TLS);
			return;
		}
		if (p->hs.in_len) { /* the far side spoke first: keep it */
			size_t k = p->hs.in_len < PROBE_BODY_MAX ? p->hs.in_len : PROBE_BODY_MAX;
			memcpy(p->resp, p->hs.in, k);
			p->resp_len = k;
			p->t_first = ev_now_ms();
		}
		if (p->hs.early_len) /* it went with the CONNECT */
			p->req_off = p->req_len;
		upstream_hs_wipe(&p->hs);
		p->state = P_SEND;
		if (p->cred || p->tls_host[0]) { /* https: TLS through the tunnel first */
			if (!p->cred || dns_tls_session(&p->tls, p->cred, fd, p->tls_host) < 0) {
				snprintf(p->tls_why, sizeof(p->tls_why), "cannot start a TLS session");
				finish(p, PROBE_TLS);
				return;
			}
			p->state = P_TLS;
		}
	}
	if (p->state == P_TLS) {
		int k = dns_tls_handshake(p->tls, &want, p->tls_why, sizeof(p->tls_why));
		if (k == 0) {
			ev_mod_fd(ev, p->h, want);
			return;
		}
		if (k < 0) {
			finish(p, PROBE_TLS);
			return;
		}
		step_deadline(p);
		p->state = P_SEND;
	}
	if (p->state == P_SEND) {
		while (p->req_off < p->req_len) {
			if (p->tls) {
				n = gnutls_record_send(p->tls, p->req + p->req_off, p->req_len - p->req_off);
				if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
					ev_mod_fd(ev, p->h, gnutls_record_get_direction(p->tls) ? EPOLLOUT : EPOLLIN);
					return;
				}
				if (n < 0) {
					snprintf(p->tls_why, sizeof(p->tls_why), "%s", gnutls_strerror((int)n));
					finish(p, PROBE_TLS);
					return;
				}
			} else {
				n = send(fd, p->req + p->req_off, p->req_len - p->req_off, MSG_NOSIGNAL);
			}
			if (n < 0 && !p->tls && errno == EAGAIN) {
				ev_mod_fd(ev, p->h, EPOLLOUT);
				return;
			}
			if (n < 0) {
				p->res.up = UP_ERR_CLOSED;
				finish(p, PROBE_UPSTREAM);
				return;
			}
			p->req_off += (size_t)n;
		}
		p->state = P_RECV;
		if (p->resp_len && (p->resp_len >= PROBE_BODY_MAX || probe_response_complete(p->resp, p->resp_len))) {
			/* the whole answer came with the proxy's reply (to early data): nothing to wait for, even
			 * from a server that keeps the connection open */
			p->res.error = probe_parse_response(p->resp, p->resp_len, &p->res.http_status, p->res.exit_ip);
			finish(p, p->res.error);
			return;
		}
		ev_mod_fd(ev, p->h, EPOLLIN);
		return;
	}
	/* P_RECV: until the response is whole (Content-Length, chunked), EOF or the buffer is full */
	for (;;) {
		if (p->tls) {
			n = gnutls_record_recv(p->tls, p->resp + p->resp_len, PROBE_BODY_MAX - p->resp_len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return;
			if (n == GNUTLS_E_PREMATURE_TERMINATION) /* closed without close_notify: EOF */
				n = 0;
			if (n < 0) { /* a broken record: TLS's fault, said as such */
				snprintf(p->tls_why, sizeof(p->tls_why), "%s", gnutls_strerror((int)n));
				finish(p, PROBE_TLS);
				return;
			}
		} else {
			n = recv(fd, p->resp + p->resp_len, PROBE_BODY_MAX - p->resp_len, 0);
		}
		if (n > 0) {
			if (!p->t_first)
				p->t_first = ev_now_ms();
			p->resp_len += (size_t)n;
			if (p->resp_len < PROBE_BODY_MAX && !probe_response_complete(p->resp, p->resp_len))
				continue;
		} else if (n < 0 && errno == EAGAIN) {
			return;
		}
		break; /* EOF, error, full, or whole by its own framing: parse what we have */
	}
	p->res.error = probe_parse_response(p->resp, p->resp_len, &p->res.http_status, p->res.exit_ip);
	finish(p, p->res.error);
}

static void on_start_failed(struct evloop *ev, void *arg)
{
	(void)ev;
	finish(arg, PROBE_UPSTREAM);
}

struct probe *probe_start(struct evloop *ev, const struct sockaddr_storage *proxy, enum upstream_type type,
			  const char *user, const char *pass, int flags, const struct net_http_url *url,
			  gnutls_certificate_credentials_t cred, unsigned timeout_ms, probe_done_cb cb, void *arg)
{
	struct probe *p = calloc(1, sizeof(*p));
	struct upstream_target t;
	int n;

	if (!p)
		return NULL;
	p->fd = -1;
	p->ev = ev;
	p->cb = cb;
	p->arg = arg;
	p->timeout_ms = timeout_ms;
	p->t0 = ev_now_ms();
	snprintf(p->user, sizeof(p->user), "%s", user);
	snprintf(p->pass, sizeof(p->pass), "%s", pass);
	if (url->tls) { /* the certificate must name the URL's host */
		p->cred = cred;
		snprintf(p->tls_host, sizeof(p->tls_host), "%s", url->host);
	}
	memset(&t, 0, sizeof(t));
	{
		struct net_ip ip;
		if (net_ip_parse(url->host, &ip) == 0) {
			net_ip_to_sa(&ip, url->port, &t.addr);
		} else { /* the proxy resolves the name */
			snprintf(t.host, sizeof(t.host), "%s", url->host);
			t.port = url->port;
		}
	}
	upstream_hs_init(&p->hs, type, &t, p->user, p->pass);
	p->hs.pipeline = (flags & PROBE_PIPELINED) && type == UPSTREAM_SOCKS5;
	{
		char port[8] = "";
		if (url->port != (url->tls ? 443 : 80))
			snprintf(port, sizeof(port), ":%u", url->port);
		n = snprintf(
		    p->req, sizeof(p->req),
		    "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUser-Agent: pgw-healthd\r\nAccept: */*\r\nConnection: "
		    "close\r\n\r\n",
		    url->path, url->is6 ? "[" : "", url->host, url->is6 ? "]" : "", port);
	}
	p->req_len = n > 0 && (size_t)n < sizeof(p->req) ? (size_t)n : 0;
	if ((flags & PROBE_EARLY) && !url->tls) { /* the request rides behind the CONNECT */
		p->hs.early = (const uint8_t *)p->req;
		p->hs.early_len = p->req_len;
	}
	p->timer = ev_add_timer(ev, timeout_ms, 0, on_timeout, p);
	p->fd = socket(proxy->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!p->timer || p->fd < 0 || !p->req_len) {
		probe_cancel(p);
		return NULL;
	}
	if (connect(p->fd, (const struct sockaddr *)proxy, net_sa_len(proxy)) < 0 && errno != EINPROGRESS) {
		/* report from the loop, never from inside the caller */
		p->res.up = errno == ECONNREFUSED ? UP_ERR_CONNECT_REFUSED : UP_ERR_CONNECT;
		p->state = P_FAILED_AT_START;
		ev_timer_set(p->timer, 0, 0);
		ev_del(ev, p->timer);
		p->timer = ev_add_timer(ev, 0, 0, on_start_failed, p);
		return p;
	}
	p->h = ev_add_fd(ev, p->fd, EPOLLOUT, on_io, p);
	if (!p->h) {
		probe_cancel(p);
		return NULL;
	}
	return p;
}

void probe_cancel(struct probe *p)
{
	if (!p)
		return;
	ev_del(p->ev, p->h);
	ev_del(p->ev, p->timer);
	if (p->tls)
		gnutls_deinit(p->tls);
	if (p->fd >= 0)
		close(p->fd);
	upstream_hs_wipe(&p->hs);
	explicit_bzero(p->user, sizeof(p->user));
	explicit_bzero(p->pass, sizeof(p->pass));
	free(p);
}
