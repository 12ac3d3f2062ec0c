/* dnscheck.c - see dnscheck.h. One non-blocking check per proxy: TCP to the proxy, the proxy's
 * handshake to the resolver, TLS for tls:// resolvers (certificate checked against the name),
 * one length-prefixed query, its answer. Each resolver has health_timeout to answer. */
#include "dnscheck.h"

#include "dnstls.h"
#include "log.h"
#include "random.h"
#include "settings.h"
#include "store.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum dc_state { DC_PROXY, DC_TLS, DC_SEND, DC_RECV };

struct dnscheck {
	struct healthd *h;
	int64_t id;				   /* the target (h->t moves when it grows: found again by id) */
	int idx;				   /* which resolver */
	struct dns_upstream up[DNS_UPSTREAMS_MAX]; /* the resolvers: the proxy's organisation's, else the gateway's */
	int n;
	enum dc_state state;
	int fd;
	struct ev_handle *fh, *timer;
	struct upstream_hs hs;
	gnutls_session_t tls;
	struct dns_query q;
	uint8_t out[2 + 600];
	size_t out_len, out_off;
	uint8_t in[2 + DNS_MSG_MAX];
	size_t in_len;
	uint64_t t0;
	char why[400];
};

static void dc_attempt(struct dnscheck *c);

static void dc_close(struct dnscheck *c)
{
	if (c->fh)
		ev_del(c->h->d->ev, c->fh);
	if (c->timer)
		ev_del(c->h->d->ev, c->timer);
	c->fh = c->timer = NULL;
	if (c->tls)
		gnutls_deinit(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	upstream_hs_wipe(&c->hs);
}

void dnscheck_cancel(struct target *t)
{
	if (!t->dns_check)
		return;
	dc_close(t->dns_check);
	free(t->dns_check);
	t->dns_check = NULL;
}

/* The verdict: stored; the forwarder told when it changed. */
static void dc_done(struct dnscheck *c, int up)
{
	struct healthd *h = c->h;
	struct target *t = healthd_find(h, c->id);
	unsigned ms = (unsigned)(ev_now_ms() - c->t0);
	int v = up ? 1 : 2;

	dc_close(c);
	if (!t || t->dns_check != c) {
		free(c);
		return;
	}
	t->dns_check = NULL;
	if (store_check(
		h, t->id, "DNS",
		"UPDATE proxy_health SET dns_status = ?2, dns_error = ?3, dns_latency_ms = ?4 WHERE proxy_id = ?1",
		up ? "up" : "down", up, c->why, (int)ms) == 0) {
		if (t->dns_status != v) {
			struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id};
			log_info("proxy %lld (%s): DNS %s%s%s", (long long)t->id, t->name, up ? "up" : "down",
				 up ? "" : ": ", up ? "" : c->why);
			notify_send(h->d->nt, "forwarder", &m);
		}
		t->dns_status = v;
		h->api_dirty = 1;
	}
	free(c);
}

/* This resolver failed (why): the next one, or the verdict down. */
static void dc_fail(struct dnscheck *c, const char *fmt, const char *detail)
{
	const struct dns_upstream *u = &c->up[c->idx];

	snprintf(c->why, sizeof(c->why), "%s%s:%u: %s%s%s", u->tls ? "tls://" : "", u->host, u->port, fmt,
		 detail ? ": " : "", detail ? detail : "");
	dc_close(c);
	if (++c->idx < c->n) {
		dc_attempt(c);
		return;
	}
	dc_done(c, 0);
}

static void dc_want(struct dnscheck *c, uint32_t ev)
{
	ev_mod_fd(c->h->d->ev, c->fh, ev);
}

static void dc_io(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct dnscheck *c = arg;
	ssize_t k;

	(void)ev, (void)fd, (void)events;
	if (c->state == DC_PROXY) {
		uint32_t want = 0;
		enum upstream_result r = upstream_hs_step(&c->hs, c->fd, &want);

		if (r == UP_IN_PROGRESS) {
			dc_want(c, want);
			return;
		}
		if (r != UP_OK) {
			dc_fail(c, "through the proxy", upstream_result_str(r));
			return;
		}
		upstream_hs_wipe(&c->hs);
		if (c->up[c->idx].tls) {
			if (dns_tls_session(&c->tls, c->h->dns_cred, c->fd, c->up[c->idx].name) < 0) {
				dc_fail(c, "TLS", "cannot start a session");
				return;
			}
			c->state = DC_TLS;
		} else {
			c->state = DC_SEND;
		}
	}
	if (c->state == DC_TLS) {
		char why[300];
		uint32_t want = 0;
		int r = dns_tls_handshake(c->tls, &want, why, sizeof(why));
		if (r == 0) {
			dc_want(c, want);
			return;
		}
		if (r < 0) {
			dc_fail(c, why, NULL);
			return;
		}
		c->state = DC_SEND;
	}
	if (c->state == DC_SEND) {
		while (c->out_off < c->out_len) {
			k = c->tls ? gnutls_record_send(c->tls, c->out + c->out_off, c->out_len - c->out_off)
				   : send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (k < 0 && (c->tls ? (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) : errno == EAGAIN)) {
				dc_want(c, EPOLLOUT);
				return;
			}
			if (k <= 0) {
				dc_fail(c, "write", NULL);
				return;
			}
			c->out_off += (size_t)k;
		}
		c->state = DC_RECV;
		dc_want(c, EPOLLIN);
	}
	if (c->state == DC_RECV) {
		for (;;) {
			struct dns_answer a;
			size_t mlen;

			k = c->tls ? gnutls_record_recv(c->tls, c->in + c->in_len, sizeof(c->in) - c->in_len)
				   : recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
			if (k < 0 && (c->tls ? (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) : errno == EAGAIN))
				return;
			if (k <= 0) {
				dc_fail(c, "the resolver closed the connection without an answer", NULL);
				return;
			}
			c->in_len += (size_t)k;
			if (!dns_tcp_next(c->in, c->in_len, &mlen))
				continue;
			if (dns_parse_answer(c->in + 2, mlen, &c->q, &a) < 0 || a.id != c->q.id) {
				dc_fail(c, "not an answer to the check", NULL);
				return;
			}
			if (a.rcode != DNS_RCODE_OK && a.rcode != DNS_RCODE_NXDOMAIN) {
				char rc[16];
				snprintf(rc, sizeof(rc), "rcode %d", a.rcode);
				dc_fail(c, "the resolver failed", rc);
				return;
			}
			dc_done(c, 1);
			return;
		}
	}
}

static void dc_timeout(struct evloop *ev, void *arg)
{
	struct dnscheck *c = arg;
	static const char *const step[] = {"the proxy's handshake", "TLS", "sending", "the answer"};

	(void)ev;
	dc_fail(c, "timed out waiting for", step[c->state]);
}

static void dc_attempt(struct dnscheck *c)
{
	struct healthd *h = c->h;
	struct target *t = healthd_find(h, c->id);
	const struct dns_upstream *u = &c->up[c->idx];
	struct upstream_target tg;
	struct net_ip ip;
	uint16_t id;
	int n;

	if (c->idx >= c->n) { /* the organisation's dns_upstream does not parse (written by hand) */
		snprintf(c->why, sizeof(c->why), "no usable resolver in the organisation's dns_upstream");
		dc_done(c, 0);
		return;
	}

	c->state = DC_PROXY;
	c->out_off = c->in_len = 0;
	if (!t) {
		dc_done(c, 0);
		return;
	}
	memset(&tg, 0, sizeof(tg));
	if (net_ip_parse(u->host, &ip) == 0) {
		net_ip_to_sa(&ip, u->port, &tg.addr);
	} else {
		snprintf(tg.host, sizeof(tg.host), "%s", u->host);
		tg.port = u->port;
	}
	if (random_bytes(&id, sizeof(id)) < 0) {
		snprintf(c->why, sizeof(c->why), "no random query id (%s)", strerror(errno));
		dc_done(c, 0);
		return;
	}
	n = dns_build_query(id, h->dns_name, 1, c->out + 2, sizeof(c->out) - 2);
	if (n < 0 || dns_parse_query(c->out + 2, (size_t)n, &c->q) < 0) {
		snprintf(c->why, sizeof(c->why), "dns_check_name '%.100s' cannot be asked", h->dns_name);
		dc_done(c, 0);
		return;
	}
	c->out[0] = (uint8_t)(n >> 8);
	c->out[1] = (uint8_t)n;
	c->out_len = 2 + (size_t)n;
	upstream_hs_init(&c->hs, t->type, &tg, t->user, t->pass);
	c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    (connect(c->fd, (struct sockaddr *)&t->addr, net_sa_len(&t->addr)) < 0 && errno != EINPROGRESS)) {
		dc_fail(c, "cannot connect to the proxy", strerror(errno));
		return;
	}
	c->fh = ev_add_fd(h->d->ev, c->fd, EPOLLOUT, dc_io, c);
	c->timer = ev_add_timer(h->d->ev, h->params.timeout_ms, 0, dc_timeout, c);
	if (!c->fh || !c->timer)
		dc_fail(c, "out of memory", NULL);
}

void dnscheck_start(struct healthd *h, struct target *t)
{
	struct dnscheck *c;

	/* an organisation's own list that does not parse is a check that fails, not the gateway's */
	if (!h->dns_on || t->dns_check || !t->addr_ok || (!t->dns_own && h->dns_n == 0) || !(c = calloc(1, sizeof(*c))))
		return;
	c->n = t->dns_own ? t->dns_n : h->dns_n;
	memcpy(c->up, t->dns_own ? t->dns_up : h->dns_up, sizeof(c->up));
	c->h = h;
	c->id = t->id;
	c->fd = -1;
	c->t0 = ev_now_ms();
	t->dns_check = c;
	dc_attempt(c);
}

void dnscheck_use_settings(struct healthd *h, const struct health_settings *s)
{
	char err[200];
	int n;

	h->dns_on = strcmp(s->dns_mode, "proxy") == 0;
	n = dns_upstreams_parse(s->dns_upstream, h->dns_up, DNS_UPSTREAMS_MAX, err, sizeof(err));
	h->dns_n = n > 0 ? n : 0;
	snprintf(h->dns_name, sizeof(h->dns_name), "%s", s->dns_check_name);
	if (!h->dns_cred) {
		gnutls_certificate_credentials_t x;
		if (dns_tls_creds(h->d->cfg.dns_tls_ca, &x, err, sizeof(err)) < 0)
			log_warnx("%s", err);
		h->dns_cred = x;
	}
}

void dnscheck_fini(struct healthd *h)
{
	if (h->dns_cred)
		gnutls_certificate_free_credentials(h->dns_cred);
	h->dns_cred = NULL;
}
