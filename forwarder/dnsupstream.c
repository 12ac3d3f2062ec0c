/* dnsupstream.c - the resolver's upstream side (see resolver.h): up to UC_PER_RESOLVER
 * connections per proxy and resolver, through the proxy's handshake (and TLS), a query on an idle
 * one where it can (else pipelined) under an id of the connection's own, answers matched in any
 * order; retries, failover, penalties. */
#include "resolver_int.h"

#include "dnstls.h"
#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* This attempt failed: the next resolver, or SERVFAIL when none is left or time is up. */
void rq_retry(struct resolver *r, struct rq *q, const char *why)
{
	uint64_t now = ev_now_ms();

	if (q->uc) {
		q->uc->slot[q->up_id & (UC_SLOTS - 1)] = NULL;
		q->uc->pending--;
		q->uc = NULL;
	}
	atomic_fetch_add(&r->upstream_fail, 1);
	q->attempt++;
	if (q->attempt > n_ups(r, &q->e) || now >= q->deadline) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, why);
		rq_done(r, q);
		return;
	}
	rq_send(r, q);
}

static void uc_io(struct upconn *uc, uint32_t events);

void uc_free(struct upconn *uc)
{
	struct resolver *r = uc->r;

	uc_close(uc, 0);
	if (uc->prev)
		uc->prev->next = uc->next;
	else
		r->ucs = uc->next;
	if (uc->next)
		uc->next->prev = uc->prev;
	explicit_bzero(&uc->e, sizeof(uc->e));
	free(uc->out);
	free(uc);
}

/* Close the connection (the object stays: it remembers a penalty); its queries move on: to the
 * next resolver, or, when requeue is set (the server ended a connection that was working, RFC
 * 7766 6.2.3 lets it: dnsmasq does after 100 queries; or one of several failed, uc_fail), to
 * another connection to the same one without spending an attempt (at most UC_REQUEUE_MAX times a
 * query). */
static void uc_close_as(struct upconn *uc, int penalty, int requeue)
{
	struct resolver *r = uc->r;

	if (uc->h)
		ev_del(r->ev, uc->h);
	uc->h = NULL;
	if (uc->tls)
		gnutls_deinit(uc->tls);
	uc->tls = NULL;
	uc->tls_inflight = 0;
	if (uc->fd >= 0)
		close(uc->fd);
	uc->fd = -1;
	if (uc->hs) {
		upstream_hs_wipe(uc->hs);
		free(uc->hs);
		uc->hs = NULL;
	}
	uc->state = UC_CLOSED;
	uc->out_len = uc->in_len = uc->in_cap = 0;
	free(uc->in);
	uc->in = NULL;
	if (penalty)
		uc->penalty_until = ev_now_ms() + UC_PENALTY_MS;
	if (uc->pending) { /* detach them all first: a retry may reopen this very connection */
		struct rq *moved = NULL, *q;

		for (unsigned i = UC_SLOTS; i-- > 0;)
			if ((q = uc->slot[i])) {
				q->uc = NULL;
				q->moved = moved;
				moved = q;
				uc->slot[i] = NULL;
			}
		uc->pending = 0;
		while ((q = moved)) {
			moved = q->moved;
			q->moved = NULL;
			if (requeue && q->requeued < UC_REQUEUE_MAX && ev_now_ms() < q->deadline) {
				q->requeued++;
				atomic_fetch_add(&r->requeued, 1);
				rq_send(r, q);
			} else {
				rq_retry(r, q, "resolver connection failed");
			}
		}
	}
}

void uc_close(struct upconn *uc, int penalty)
{
	uc_close_as(uc, penalty, 0);
}

static int same_proxy(const struct fwd_entry *a, const struct fwd_entry *b)
{
	return a->org_id == b->org_id && a->proxy_id == b->proxy_id && a->endpoint == b->endpoint &&
	       a->type == b->type && memcmp(&a->proxy, &b->proxy, sizeof(a->proxy)) == 0 &&
	       strcmp(a->user, b->user) == 0 && strcmp(a->pass, b->pass) == 0;
}

/* Connections to the same resolver through the same proxy (of the same configuration). */
static int same_group(const struct upconn *a, const struct upconn *b)
{
	return a->idx == b->idx && a->conf_gen == b->conf_gen && same_proxy(&a->e, &b->e);
}

/* uc failed. While another connection to its resolver through its proxy serves, it is this
 * connection that failed (a proxy or resolver with a limit on connections, one that lost its
 * way), not the resolver: its queries go on to the others without spending an attempt, and it
 * is not reopened for a while. Else the resolver is tried last for a while (a penalty). */
void uc_fail(struct upconn *uc, const char *what, const char *detail)
{
	struct upconn *o;

	for (o = uc->r->ucs; o; o = o->next)
		if (o != uc && o->state == UC_READY && same_group(o, uc))
			break;
	/* with another serving, not a warning: nothing failed that a client sees */
	log_emit(o ? LOG_LVL_INFO : LOG_LVL_WARN, NULL, 0, "dns: resolver %s:%u through proxy %lld: %s%s%s%s",
		 uc->up.host, uc->up.port, (long long)uc->e.proxy_id, what, detail ? ": " : "", detail ? detail : "",
		 o ? " (another connection to it serves; this one is not tried again for a while)" : "");
	if (o)
		uc->reopen_after = ev_now_ms() + UC_PENALTY_MS;
	uc_close_as(uc, !o, !!o);
}

/* q's attempt timed out on uc, on which nothing at all came back since q went: a connection the
 * proxy or resolver holds open but no longer answers on. It is closed (the resolver tried last for
 * a while); q moves on as a timed-out attempt, and the other queries it carried ask again on a
 * new connection without spending one (a slow answer to q alone costs them nothing). */
void uc_silent(struct upconn *uc, struct rq *q)
{
	struct resolver *r = uc->r;

	log_warnx("dns: resolver %s:%u through proxy %lld: timed out: no answer on its connection (closed; "
		  "its other queries asked again)",
		  uc->up.host, uc->up.port, (long long)uc->e.proxy_id);
	uc->slot[q->up_id & (UC_SLOTS - 1)] = NULL; /* q first, so that it is not asked again with them */
	uc->pending--;
	q->uc = NULL;
	uc_close_as(uc, 1, 1);
	rq_retry(r, q, "resolver timed out");
}

static void uc_want(struct upconn *uc, uint32_t ev)
{
	if (uc->h && ev != uc->ev && ev_mod_fd(uc->r->ev, uc->h, ev) == 0)
		uc->ev = ev;
}

static void on_uc(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	(void)ev, (void)fd;
	uc_io(arg, events);
}

static int uc_open(struct upconn *uc)
{
	struct upstream_target t;
	struct net_ip ip;
	int one = 1;

	uc->fd = socket(uc->e.proxy.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (uc->fd < 0)
		return -errno;
	setsockopt(uc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(uc->fd, (struct sockaddr *)&uc->e.proxy, net_sa_len(&uc->e.proxy)) < 0 && errno != EINPROGRESS)
		return -errno;
	if (!(uc->hs = calloc(1, sizeof(*uc->hs))))
		return -ENOMEM;
	memset(&t, 0, sizeof(t));
	if (net_ip_parse(uc->up.host, &ip) == 0) {
		net_ip_to_sa(&ip, uc->up.port, &t.addr);
	} else { /* a name: the proxy resolves it (SOCKS5 ATYP 3, CONNECT host:port) */
		snprintf(t.host, sizeof(t.host), "%s", uc->up.host);
		t.port = uc->up.port;
	}
	upstream_hs_init(uc->hs, uc->e.type, &t, uc->e.user, uc->e.pass);
	uc->hs->pipeline = uc->e.pipeline;
	uc->h = ev_add_fd(uc->r->ev, uc->fd, EPOLLOUT, on_uc, uc);
	uc->ev = EPOLLOUT;
	if (!uc->h)
		return -ENOMEM;
	uc->state = UC_CONNECTING;
	uc->answered = uc->unmatched = 0;
	uc->last_answer = 0;
	atomic_fetch_add(&uc->r->uc_opened, 1);
	return 0;
}

/* One of the connections to resolver idx through e's proxy (of the configuration now). */
static int uc_of(const struct upconn *uc, const struct resolver *r, const struct fwd_entry *e, int idx)
{
	return uc->idx == idx && uc->conf_gen == r->conf.gen && same_proxy(&uc->e, e);
}

/* The connection to resolver idx through e's proxy for a new query: an open one carrying nothing;
 * else, while fewer than UC_PER_RESOLVER are open and none of them failed lately, a closed one
 * or a new one; else the open one carrying the fewest (a closed one when none is open). A query
 * alone on its connection is answered at once even by a resolver that holds back a small answer
 * until the one before it is acknowledged (Nagle: unbound does, on DNS over TCP and TLS): behind
 * a proxy that acknowledgement comes only with the proxy's next write, the next query, so on one
 * busy pipelined connection every answer waited for the query after it (docs/PERFORMANCE.md,
 * DNS). NULL: out of memory. */
static struct upconn *uc_pick(struct resolver *r, const struct fwd_entry *e, int idx)
{
	struct upconn *uc, *closed = NULL, *least = NULL;
	int open = 0, failed = 0, n;
	uint64_t now = ev_now_ms();

	for (uc = r->ucs; uc; uc = uc->next) {
		if (!uc_of(uc, r, e, idx))
			continue;
		failed |= uc->penalty_until > now || uc->reopen_after > now;
		if (uc->state == UC_CLOSED) {
			closed = uc;
			continue;
		}
		if (uc->state == UC_READY && uc->pending == 0)
			return uc;
		open++;
		if (!least || uc->pending < least->pending ||
		    (uc->pending == least->pending && uc->state == UC_READY && least->state != UC_READY))
			least = uc;
	}
	if (least && (open >= UC_PER_RESOLVER || failed))
		return least;
	if (closed)
		return closed;
	if (!(uc = calloc(1, sizeof(*uc))))
		return NULL;
	uc->r = r;
	uc->e = *e;
	uc->idx = idx;
	uc->conf_gen = r->conf.gen;
	uc->up = res_ups(r, e, &n)[idx];
	uc->fd = -1;
	uc->turn = (uint16_t)random();
	uc->last_used = ev_now_ms();
	uc->next = r->ucs;
	if (r->ucs)
		r->ucs->prev = uc;
	r->ucs = uc;
	return uc;
}

/* Put q on uc's wire (queued until the connection is ready), under an id of uc's. */
static int uc_enqueue(struct upconn *uc, struct rq *q)
{
	uint8_t l[2] = {(uint8_t)(q->len >> 8), (uint8_t)q->len};
	unsigned s;

	if (uc->pending >= UC_SLOTS)
		return -ENOBUFS;
	for (s = (unsigned)random() & (UC_SLOTS - 1); uc->slot[s]; s = (s + 1) & (UC_SLOTS - 1))
		;
	uc->turn++;
	q->up_id = (uint16_t)((uc->turn & 0x3f) << 10 | s);
	if (uc->out_len + 2 + q->len > UC_OUT_MAX || /* both parts or neither: the stream stays framed */
	    buf_append(&uc->out, &uc->out_len, &uc->out_cap, l, 2, UC_OUT_MAX) < 0)
		return -ENOBUFS;
	if (buf_append(&uc->out, &uc->out_len, &uc->out_cap, q->msg, q->len, UC_OUT_MAX) < 0) {
		uc->out_len -= 2;
		return -ENOBUFS;
	}
	dns_set_id(uc->out + uc->out_len - q->len, q->up_id);
	uc->slot[s] = q;
	uc->pending++;
	q->uc = uc;
	uc->last_used = ev_now_ms();
	return 0;
}

/* Whether q's client still goes through the proxy q was asked through: a reload of the mappings
 * may have blocked it, or moved it to another proxy, since it asked. When not, q is answered
 * (REFUSED: blocked or unknown now; SERVFAIL: moved or its proxy down, so the device asks again)
 * and done, and 0 returned: a query is never sent through a path its client no longer has. */
int rq_path_holds(struct resolver *r, struct rq *q)
{
	const struct fwd_entry *e;
	uint64_t gen = atomic_load(&r->sh->table_gen);
	int rcode = DNS_RCODE_REFUSED;
	const char *why = "not mapped any more";

	if (q->table_gen == gen)
		return 1;
	pthread_rwlock_rdlock(&r->sh->lock);
	e = table_lookup(r->sh->table, &q->client);
	if (table_same_path(e, &q->e)) {
		pthread_rwlock_unlock(&r->sh->lock);
		q->table_gen = gen;
		return 1;
	}
	if (e && (e->state == FWD_ACTIVE || e->proxy_down || e->unread)) {
		rcode = DNS_RCODE_SERVFAIL;
		why = e->state == FWD_ACTIVE ? "moved to another proxy meanwhile"
		      : e->unread	     ? "mappings unreadable meanwhile"
					     : "proxy down meanwhile";
	} else if (e) {
		why = "blocked meanwhile";
	}
	pthread_rwlock_unlock(&r->sh->lock);
	reply_rcode(r, q, rcode, why);
	rq_done(r, q);
	return 0;
}

/* The mappings changed: every query waiting is checked against them (rq_path_holds). A query's
 * bytes still queued on a connection not yet ready (or not yet written) would go later: that
 * connection is closed, the others it carried moving on (to the path they still have). */
void rq_revalidate(struct resolver *r)
{
	uint64_t gen = atomic_load(&r->sh->table_gen);
	struct rq *q;

	if (r->table_gen == gen)
		return;
	r->table_gen = gen;
again: /* each step ends a query or checks one for this generation: this ends */
	for (q = r->rqs; q; q = q->next) {
		struct upconn *uc = q->uc;
		int queued;

		if (q->table_gen == gen)
			continue;
		queued = uc && (uc->state != UC_READY || uc->out_len);
		if (rq_path_holds(r, q))
			continue;
		if (queued)
			uc_close_as(uc, 0, 1);
		goto again;
	}
}

void rq_send(struct resolver *r, struct rq *q)
{
	int n = n_ups(r, &q->e), idx = n ? (q->first + q->attempt) % n : 0;
	struct upconn *uc;
	uint64_t now = ev_now_ms();

	if (!rq_path_holds(r, q)) /* asked again (a retry, a requeue) after the mappings changed */
		return;
	uc = n ? uc_pick(r, &q->e, idx) : NULL;
	if (!n) { /* its organisation's resolvers were replaced by none meanwhile */
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "no resolver");
		rq_done(r, q);
		return;
	}
	if (!uc) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "out of memory");
		rq_done(r, q);
		return;
	}
	if (uc->state == UC_CLOSED && uc_open(uc) < 0) {
		uc_fail(uc, "proxy", "cannot connect");
		rq_retry(r, q, "cannot reach the proxy");
		return;
	}
	q->sent = now;
	q->attempt_deadline = now + RESOLVER_ATTEMPT_MS < q->deadline ? now + RESOLVER_ATTEMPT_MS : q->deadline;
	if (uc_enqueue(uc, q) < 0) {
		rq_retry(r, q, "resolver connection full");
		return;
	}
	if (uc->state == UC_READY)
		uc_io(uc, EPOLLOUT);
}

/* The first resolver to try: the first one none of whose connections through e's proxy failed
 * recently (a penalty). */
int first_resolver(struct resolver *r, const struct fwd_entry *e)
{
	uint64_t now = ev_now_ms();

	for (int i = 0; i < n_ups(r, e); i++) {
		struct upconn *uc;

		for (uc = r->ucs; uc; uc = uc->next)
			if (uc_of(uc, r, e, i) && uc->penalty_until > now)
				break;
		if (!uc)
			return i;
	}
	return 0;
}

/* An answer for q from its resolver. */
void rq_answer(struct resolver *r, struct rq *q, uint8_t *msg, size_t len)
{
	struct dns_answer a;
	uint64_t ms;

	if (dns_parse_answer(msg, len, &q->q, &a) < 0) {
		rq_retry(r, q, "malformed answer from the resolver");
		return;
	}
	if ((a.rcode == DNS_RCODE_SERVFAIL || a.rcode == DNS_RCODE_REFUSED || a.rcode == DNS_RCODE_NOTIMP) &&
	    q->attempt + 1 < n_ups(r, &q->e) && ev_now_ms() < q->deadline) {
		rq_retry(r, q, "resolver refused"); /* another may help; the last one's word is passed on */
		return;
	}
	memcpy(msg + DNS_HEADER, q->msg + DNS_HEADER, q->q.question_end - DNS_HEADER); /* the client's case */
	dns_set_id(msg, q->q.id);
	if (q->uc && q->uc->conf_gen == r->conf.gen) { /* not an answer from resolvers since replaced */
		memcpy(r->scratch, msg, len);
		dns_cache_put(r->cache, q->e.path, &q->q, r->scratch, dns_strip_opt(r->scratch, len), a.ttl,
			      ev_now_ms());
	}
	if (!rq_path_holds(r, q)) /* blocked or moved since it asked (before the tick found it) */
		return;
	ms = ev_now_ms() - q->t0;
	send_reply(r, q, msg, len);
	count_answer(r, &q->client, q->e.proxy_id, q->e.org_id, a.rcode, 0, ms);
	log_query(r, q, "resolved", a.rcode, ms);
	rq_done(r, q);
}

/* ---- upstream connection I/O ---- */

/* A GnuTLS error as errno, for uc_ended: -1. A socket's own error (PULL, PUSH) leaves the errno
 * of the recv() or send() that failed (GnuTLS 3.7's default transport functions do). */
static ssize_t tls_errno(ssize_t k)
{
	if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
		errno = EAGAIN;
	else if (k == GNUTLS_E_PREMATURE_TERMINATION) /* closed (or reset) without a close_notify */
		errno = ECONNRESET;
	else if (k != GNUTLS_E_PULL_ERROR && k != GNUTLS_E_PUSH_ERROR)
		errno = EIO;
	return -1;
}

static ssize_t uc_read(struct upconn *uc, uint8_t *buf, size_t n)
{
	ssize_t k;

	if (!uc->tls)
		return recv(uc->fd, buf, n, 0);
	k = gnutls_record_recv(uc->tls, buf, n);
	if (k >= 0)
		return k;
	return tls_errno(k);
}

static ssize_t uc_write(struct upconn *uc, const uint8_t *buf, size_t n)
{
	ssize_t k;

	if (!uc->tls)
		return send(uc->fd, buf, n, MSG_NOSIGNAL);
	if (uc->tls_inflight) { /* finish the record already begun, as GnuTLS requires */
		k = gnutls_record_send(uc->tls, NULL, 0);
		if (k >= 0) {
			k = (ssize_t)uc->tls_inflight;
			uc->tls_inflight = 0;
			return k;
		}
	} else {
		if (n > 16384)
			n = 16384;
		k = gnutls_record_send(uc->tls, buf, n);
		if (k >= 0)
			return k;
		if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
			uc->tls_inflight = n;
	}
	return tls_errno(k);
}

static void uc_tls_step(struct upconn *uc)
{
	char why[400];
	uint32_t want = 0;
	int k = dns_tls_handshake(uc->tls, &want, why, sizeof(why));

	if (k == 0) {
		uc_want(uc, want);
		return;
	}
	if (k < 0) {
		uc_fail(uc, why, NULL);
		return;
	}
	uc->state = UC_READY;
	uc_io(uc, EPOLLIN | EPOLLOUT);
}

/* The connection ended (k == 0: closed; else a reset or error in errno) with queries on it.
 * One that has answered before and was closed or reset ended at the server's will (RFC 7766
 * 6.2.3 lets it: dnsmasq does after 100 queries, resetting when our next ones are unread, and a
 * proxy passes that on): its queries are asked again without spending an attempt. Else a failure. */
static void uc_ended(struct upconn *uc, ssize_t k, const char *what)
{
	if (uc->answered && (k == 0 || errno == ECONNRESET || errno == EPIPE))
		uc_close_as(uc, 0, 1);
	else
		uc_fail(uc, what, k < 0 ? strerror(errno) : NULL);
}

static void uc_io(struct upconn *uc, uint32_t events)
{
	struct resolver *r = uc->r;

	if (uc->state == UC_CONNECTING) {
		uint32_t want = 0;
		enum upstream_result res = upstream_hs_step(uc->hs, uc->fd, &want);

		if (res == UP_IN_PROGRESS) {
			uc_want(uc, want);
			return;
		}
		if (res != UP_OK) {
			uc_fail(uc, "proxy", upstream_result_str(res));
			return;
		}
		if (uc->hs->in_len > 0) { /* a resolver never speaks first */
			uc_fail(uc, "resolver", "spoke before it was asked");
			return;
		}
		upstream_hs_wipe(uc->hs);
		free(uc->hs);
		uc->hs = NULL;
		if (uc->up.tls) {
			if (dns_tls_session(&uc->tls, uc->r->xcred, uc->fd, uc->up.name) < 0) {
				uc_fail(uc, "TLS", "cannot start a session");
				return;
			}
			uc->state = UC_TLS;
			uc_tls_step(uc);
			return;
		}
		uc->state = UC_READY;
		events = EPOLLIN | EPOLLOUT;
	}
	if (uc->state == UC_TLS) {
		uc_tls_step(uc);
		return;
	}
	if (uc->state != UC_READY)
		return;
	while (uc->out_len > 0 || uc->tls_inflight) { /* what is queued */
		ssize_t k = uc_write(uc, uc->out, uc->out_len);
		if (k < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			uc_ended(uc, k, "write");
			return;
		}
		buf_consume(uc->out, &uc->out_len, (size_t)k);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		int n = 0;

		/* answers: each a 2-byte length and a message, in any order; at most MSGS_PER_EVENT per
		 * wake-up, so a resolver (or proxy) that floods cannot starve the loop; but what GnuTLS
		 * holds of a record already read (no event will say so) is read now: one record at most */
		while (n < MSGS_PER_EVENT || (uc->tls && gnutls_record_check_pending(uc->tls) > 0)) {
			size_t off = 0;
			ssize_t k;

			/* room for the next read (a whole message always fits at the most) */
			if (buf_reserve(&uc->in, uc->in_len, &uc->in_cap, 2048, 4096, 2 + DNS_MSG_MAX) < 0) {
				uc_fail(uc, "out of memory", NULL);
				return;
			}
			k = uc_read(uc, uc->in + uc->in_len, uc->in_cap - uc->in_len);

			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				/* closed: quietly when it carried nothing (an idle connection the server ended) */
				if (uc->pending)
					uc_ended(uc, k, "connection closed");
				else
					uc_close(uc, 0);
				return;
			}
			if (k < 0)
				break; /* EAGAIN: GnuTLS too says so only when it holds nothing more */
			{ /* ACK at once: a proxy that holds back its next answer (Nagle) until the last one is
			   * acknowledged sends it now, not with our next query */
				int one = 1;
				setsockopt(uc->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
			}
			uc->in_len += (size_t)k;
			while (1) {
				size_t mlen;
				uint8_t *msg = r->answer;
				struct rq *q;
				uint16_t id;

				if (!dns_tcp_next(uc->in + off, uc->in_len - off, &mlen))
					break;
				uc->last_answer = ev_now_ms(); /* the connection works (the resolver may be slow) */
				memcpy(msg, uc->in + off + 2, mlen);
				off += 2 + mlen;
				n++;
				id = mlen >= DNS_HEADER ? (uint16_t)(msg[0] << 8 | msg[1]) : 0;
				q = mlen >= DNS_HEADER ? uc->slot[id & (UC_SLOTS - 1)] : NULL;
				if (!q || q->up_id != id) { /* late (its query timed out), or never asked */
					if (++uc->unmatched > UC_UNMATCHED_MAX) {
						uc_fail(uc, "answers to nothing asked", NULL);
						return;
					}
					continue;
				}
				uc->unmatched = 0;
				uc->answered++;
				uc->last_used = ev_now_ms();
				buf_consume(uc->in, &uc->in_len, off); /* before anything can re-enter uc */
				off = 0;
				rq_answer(r, q, msg, mlen);
				if (uc->state != UC_READY)
					return;
			}
			if (off)
				buf_consume(uc->in, &uc->in_len, off);
		}
	}
	uc_want(uc, EPOLLIN | (uc->out_len || uc->tls_inflight ? EPOLLOUT : 0));
}
