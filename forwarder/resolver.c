/* resolver.c - see resolver.h.
 *
 * A query (struct rq) lives from the client's message to its answer: it is sent on an upstream
 * connection (struct upconn: one per proxy endpoint, credentials and resolver), which carries
 * many at once, each under an id of its own (RFC 7766 6.2.1: pipelined, answered in any order).
 * An attempt that fails or times out moves the query to the next resolver on a connection of
 * its own; a connection that fails hands every query it carried on. The client side is UDP
 * (IP_PKTINFO, so the answer leaves from the address the redirected query reached) and TCP
 * (length-prefixed, several queries per connection). */
#include "resolver.h"

#include "dnscache.h"
#include "dnstls.h"
#include "evloop.h"
#include "log.h"
#include "net.h"
#include "table.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define RQ_MAX		   4096 /* queries waiting for resolvers, in all: more get SERVFAIL */
#define UC_SLOTS	   1024 /* queries at once on one upstream connection (id: slot | 10-bit turn) */
#define TC_MAX		   256	/* client TCP connections at once (then the idlest one goes) */
#define TC_PER_CLIENT	   16	/* of them from one address */
#define CLIENT_PENDING_MAX 256	/* queries of one client waiting at once: more get SERVFAIL */
#define QUERY_MAX	   4096 /* a longer query is FORMERR (nothing legitimate is this long) */
#define MSGS_PER_EVENT	   64	/* messages handled per wake-up of a connection: the loop stays fair */
#define UC_UNMATCHED_MAX   256	/* answers in a row to nothing asked: the connection is closed */
#define TC_PENDING_MAX	   64	/* queries at once on one client TCP connection */
#define TC_IDLE_MS	   10000
#define TC_OUT_MAX	   (256 * 1024)
#define UC_OUT_MAX	   (256 * 1024) /* queries queued for one resolver connection */
#define UC_IDLE_MS	   30000	/* an upstream connection with nothing to carry closes */
#define UC_PENALTY_MS	   5000		/* a resolver that failed is tried last for this long */
#define TICK_MS		   100
#define CACHE_ENTRIES	   10000
#define CACHE_BYTES	   (8u * 1024 * 1024)
#define PROXY_STATS	   256
#define UDP_BATCH	   64
#define LAT_BUCKETS	   10

static const unsigned lat_le_ms[LAT_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000};

struct rq;
struct upconn;

struct tclient {
	struct resolver *r;
	struct tclient *prev, *next;
	int fd;
	struct ev_handle *h;
	struct sockaddr_storage peer;
	uint8_t in[2 + DNS_MSG_MAX];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_cap;
	unsigned pending;
	uint64_t last;
	uint32_t ev;
	int busy, dead; /* busy: in its own handler (closed after); dead: to be closed */
	int eof;	/* the client sent all it will: closed once its answers are out */
	struct ccount *cc;
};

enum uc_state { UC_CLOSED, UC_CONNECTING, UC_TLS, UC_READY };

struct upconn {
	struct resolver *r;
	struct upconn *prev, *next;
	struct fwd_entry e; /* the proxy: address, type, credentials (wiped on free) */
	int idx;	    /* which of dns_upstream */
	uint64_t conf_gen;
	struct dns_upstream up;
	enum uc_state state;
	int fd;
	struct ev_handle *h;
	uint32_t ev;
	struct upstream_hs *hs;
	gnutls_session_t tls;
	size_t tls_inflight; /* a record gnutls_record_send() started: finish it first */
	uint8_t *out;
	size_t out_len, out_cap;
	uint8_t in[2 + DNS_MSG_MAX];
	size_t in_len;
	struct rq *slot[UC_SLOTS];
	unsigned pending, unmatched;
	uint16_t turn;
	uint64_t last_used, penalty_until;
};

/* Per client address: queries waiting and TCP connections open (bounds per client). */
struct ccount {
	struct ccount *next;
	struct net_ip ip;
	unsigned pending, tcs;
};
#define CC_BUCKETS 256

struct rq {
	struct rq *prev, *next;
	struct upconn *uc; /* carrying it now, or NULL */
	uint16_t up_id;
	struct dns_query q;
	uint8_t *msg; /* the client's query as sent */
	size_t len;
	int udp, udp_fd;
	struct sockaddr_storage peer;
	struct in6_addr local6;
	struct in_addr local4;
	int ifindex;
	struct tclient *tc;
	struct fwd_entry e;
	uint64_t path; /* the proxy as the cache knows it: id, endpoint, type, credentials */
	struct net_ip client;
	struct ccount *cc;
	int attempt, first;
	uint64_t t0, attempt_deadline, deadline;
};

struct pstat {
	int64_t proxy_id; /* 0: free */
	unsigned long queries, hits, errors, ms_sum;
};

struct resolver {
	struct fwd_shared *sh;
	pthread_t thread;
	int started;
	struct evloop *ev;
	int stopfd, udp4, udp6, tcp4, tcp6;
	struct ev_handle *hs[5], *tick;
	gnutls_certificate_credentials_t xcred;
	struct dns_cache *cache;
	uint8_t scratch[DNS_MSG_MAX]; /* an answer as the cache keeps it */
	struct ccount *cc[CC_BUCKETS];
	struct tclient *tcs;
	unsigned n_tcs;
	struct upconn *ucs;
	struct rq *rqs;
	unsigned n_rqs;
	struct {
		struct dns_upstream up[DNS_UPSTREAMS_MAX];
		int n, query_log;
		uint64_t gen;
	} conf;
	atomic_ullong last_tick;
	/* stats: written by the loop, read by the stats writer */
	atomic_ulong queries, udp, tcp, hits, answered, refused, servfail, formerr, notimp, upstream_fail, truncated,
	    lat[LAT_BUCKETS + 1], lat_ms_sum;
	pthread_mutex_t plock;
	struct pstat pstats[PROXY_STATS];
};

/* ---- stats ---- */

static void count_answer(struct resolver *r, const struct net_ip *client, int64_t proxy_id, int rcode, int hit,
			 uint64_t ms)
{
	int i;
	unsigned slot;

	atomic_fetch_add(&r->answered, 1);
	if (rcode == DNS_RCODE_REFUSED)
		atomic_fetch_add(&r->refused, 1);
	else if (rcode == DNS_RCODE_SERVFAIL)
		atomic_fetch_add(&r->servfail, 1);
	else if (rcode == DNS_RCODE_FORMERR)
		atomic_fetch_add(&r->formerr, 1);
	else if (rcode == DNS_RCODE_NOTIMP)
		atomic_fetch_add(&r->notimp, 1);
	if (hit)
		atomic_fetch_add(&r->hits, 1);
	for (i = 0; i < LAT_BUCKETS && ms > lat_le_ms[i]; i++)
		;
	atomic_fetch_add(&r->lat[i], 1);
	atomic_fetch_add(&r->lat_ms_sum, ms);
	if (client)
		stats_client_dns(&r->sh->stats, client, hit, rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED,
				 ms);
	if (proxy_id <= 0)
		return;
	pthread_mutex_lock(&r->plock);
	slot = (unsigned)proxy_id & (PROXY_STATS - 1);
	for (unsigned k = 0; k < PROXY_STATS; k++, slot = (slot + 1) & (PROXY_STATS - 1)) {
		struct pstat *p = &r->pstats[slot];
		if (p->proxy_id == 0)
			p->proxy_id = proxy_id;
		if (p->proxy_id != proxy_id)
			continue;
		p->queries++;
		p->hits += (unsigned long)hit;
		p->errors += rcode == DNS_RCODE_SERVFAIL;
		p->ms_sum += ms;
		break;
	}
	pthread_mutex_unlock(&r->plock);
}

void resolver_write_stats(struct resolver *r, FILE *out)
{
	unsigned long cum = 0;
	int first = 1;

	if (!r)
		return;
	fprintf(out,
		",\"dns\":{\"queries\":%lu,\"udp\":%lu,\"tcp\":%lu,\"answered\":%lu,\"cache_hits\":%lu,\"refused\":%lu,"
		"\"servfail\":%lu,\"formerr\":%lu,\"notimp\":%lu,\"upstream_failures\":%lu,\"truncated\":%lu,"
		"\"latency_ms_sum\":%lu,\"latency_ms_buckets\":{",
		atomic_load(&r->queries), atomic_load(&r->udp), atomic_load(&r->tcp), atomic_load(&r->answered),
		atomic_load(&r->hits), atomic_load(&r->refused), atomic_load(&r->servfail), atomic_load(&r->formerr),
		atomic_load(&r->notimp), atomic_load(&r->upstream_fail), atomic_load(&r->truncated),
		atomic_load(&r->lat_ms_sum));
	for (int i = 0; i <= LAT_BUCKETS; i++) {
		cum += atomic_load(&r->lat[i]);
		if (i < LAT_BUCKETS)
			fprintf(out, "\"%u\":%lu,", lat_le_ms[i], cum);
		else
			fprintf(out, "\"+Inf\":%lu", cum);
	}
	fputs("},\"proxies\":{", out);
	pthread_mutex_lock(&r->plock);
	for (unsigned i = 0; i < PROXY_STATS; i++) {
		const struct pstat *p = &r->pstats[i];
		if (!p->proxy_id)
			continue;
		fprintf(out, "%s\"%lld\":{\"queries\":%lu,\"cache_hits\":%lu,\"servfail\":%lu,\"latency_ms_sum\":%lu}",
			first ? "" : ",", (long long)p->proxy_id, p->queries, p->hits, p->errors, p->ms_sum);
		first = 0;
	}
	pthread_mutex_unlock(&r->plock);
	fputs("}}", out);
}

/* ---- per-client bounds ---- */

static struct ccount *cc_get(struct resolver *r, const struct net_ip *ip)
{
	unsigned b = net_ip_hash(ip) & (CC_BUCKETS - 1);
	struct ccount *c;

	for (c = r->cc[b]; c; c = c->next)
		if (memcmp(&c->ip, ip, sizeof(*ip)) == 0)
			return c;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->ip = *ip;
	c->next = r->cc[b];
	r->cc[b] = c;
	return c;
}

/* Forget a client that has nothing waiting and nothing open. */
static void cc_release(struct resolver *r, struct ccount *c)
{
	unsigned b;
	struct ccount **pp;

	if (!c || c->pending || c->tcs)
		return;
	b = net_ip_hash(&c->ip) & (CC_BUCKETS - 1);
	for (pp = &r->cc[b]; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	free(c);
}

/* What the cache keys an answer by besides the question: the proxy and how it is reached (the
 * same host and port with other credentials can be another exit). */
static uint64_t path_of(const struct fwd_entry *e)
{
	uint64_t h = 14695981039346656037ull ^ (uint64_t)e->proxy_id;
	const unsigned char *parts[2] = {(const unsigned char *)e->user, (const unsigned char *)e->pass};

	h = (h ^ e->endpoint) * 1099511628211ull;
	h = (h ^ (uint64_t)e->type) * 1099511628211ull;
	for (const unsigned char *p = (const unsigned char *)&e->proxy; p < (const unsigned char *)(&e->proxy + 1); p++)
		h = (h ^ *p) * 1099511628211ull;
	for (int i = 0; i < 2; i++) {
		for (const unsigned char *p = parts[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
	}
	return h;
}

/* ---- buffers ---- */

static int buf_append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *a, size_t alen, size_t max)
{
	if (*len + alen > max)
		return -ENOBUFS;
	if (*len + alen > *cap) {
		size_t ncap = *cap ? *cap : 4096;
		uint8_t *n;
		while (ncap < *len + alen)
			ncap *= 2;
		if (!(n = realloc(*buf, ncap)))
			return -ENOMEM;
		*buf = n;
		*cap = ncap;
	}
	memcpy(*buf + *len, a, alen);
	*len += alen;
	return 0;
}

static void buf_consume(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* ---- answering the client ---- */

static void handle_query(struct resolver *r, const uint8_t *m, size_t len, const struct rq *from);

static void tc_close(struct tclient *tc)
{
	struct resolver *r = tc->r;

	for (struct rq *q = r->rqs; q && tc->pending; q = q->next)
		if (q->tc == tc) {
			q->tc = NULL; /* its answer still fills the cache */
			tc->pending--;
		}
	ev_del(r->ev, tc->h);
	close(tc->fd);
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		r->tcs = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	r->n_tcs--;
	if (tc->cc) {
		tc->cc->tcs--;
		cc_release(r, tc->cc);
	}
	free(tc->out);
	free(tc);
}

/* Send what is queued; a client that cannot take it is marked dead (closed by its owner). */
static void tc_flush(struct tclient *tc)
{
	uint32_t want;

	while (tc->out_len > 0 && !tc->dead) {
		ssize_t k = send(tc->fd, tc->out, tc->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tc->dead = 1;
			break;
		}
		buf_consume(tc->out, &tc->out_len, (size_t)k);
	}
	if (tc->dead)
		return;
	if (tc->eof && tc->pending == 0 && tc->out_len == 0) { /* all answered: done */
		tc->dead = 1;
		return;
	}
	want = (tc->pending < TC_PENDING_MAX && !tc->eof && tc->in_len < sizeof(tc->in) ? EPOLLIN | EPOLLRDHUP : 0) |
	       (tc->out_len ? EPOLLOUT : 0);
	if (want != tc->ev && ev_mod_fd(tc->r->ev, tc->h, want) == 0)
		tc->ev = want;
}

/* The whole queries waiting in tc's buffer, while it may have more in flight (at most
 * MSGS_PER_EVENT at a time; the rest on the next wake-up). */
static void tc_process(struct tclient *tc)
{
	struct rq from;
	size_t off = 0;
	int was_busy = tc->busy, n = 0;

	memset(&from, 0, sizeof(from));
	from.peer = tc->peer;
	net_ip_from_sa(&tc->peer, &from.client);
	from.tc = tc;
	tc->busy = 1;
	while (!tc->dead && tc->in_len - off >= 2 && tc->pending < TC_PENDING_MAX && n < MSGS_PER_EVENT) {
		size_t mlen = (size_t)tc->in[off] << 8 | tc->in[off + 1];

		if (mlen < DNS_HEADER) { /* not DNS over TCP: no answer could be framed for it */
			tc->dead = 1;
			break;
		}
		if (tc->in_len - off < 2 + mlen)
			break;
		tc->last = ev_now_ms();
		handle_query(tc->r, tc->in + off + 2, mlen, &from);
		off += 2 + mlen;
		n++;
	}
	if (off)
		buf_consume(tc->in, &tc->in_len, off);
	tc_flush(tc);
	tc->busy = was_busy;
	if (!tc->busy && tc->dead)
		tc_close(tc);
}

static void on_tclient(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct tclient *tc = arg;

	(void)ev;
	tc->busy = 1;
	if (events & (EPOLLHUP | EPOLLERR))
		tc->dead = 1;
	if (!tc->dead && (events & EPOLLOUT))
		tc_flush(tc);
	if (!tc->dead && !tc->eof && (events & (EPOLLIN | EPOLLRDHUP)) && tc->in_len < sizeof(tc->in)) {
		ssize_t k = recv(fd, tc->in + tc->in_len, sizeof(tc->in) - tc->in_len, MSG_DONTWAIT);

		if (k == 0)
			tc->eof = 1; /* half-closed: what it asked is still answered */
		else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			tc->dead = 1;
		else if (k > 0)
			tc->in_len += (size_t)k;
	}
	tc_process(tc);
	tc->busy = 0;
	if (tc->dead)
		tc_close(tc);
}

static void log_query(struct resolver *r, const struct rq *q, const char *how, int rcode, uint64_t ms)
{
	static const char *const rc[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
	char ip[NET_IP_STR_MAX], name[4 * DNS_NAME_MAX + 8];

	if (!r->conf.query_log)
		return;
	net_ip_str(&q->client, ip);
	dns_name_str(q->q.qname, q->q.qname_len, name, sizeof(name));
	if (rcode >= 0 && rcode <= 5)
		log_info("dns: %s %s type %u -> %s (%s, %llu ms)", ip, name, q->q.qtype, rc[rcode], how,
			 (unsigned long long)ms);
	else
		log_info("dns: %s %s type %u -> rcode %d (%s, %llu ms)", ip, name, q->q.qtype, rcode, how,
			 (unsigned long long)ms);
}

/* Send msg (len bytes, the client's id already in it) back the way q came. */
static void send_reply(struct resolver *r, const struct rq *q, uint8_t *msg, size_t len)
{
	if (q->udp) {
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} u;
		struct iovec iov;
		struct msghdr mh;
		struct cmsghdr *cm;
		size_t n = dns_truncate(msg, len, q->q.udp_size, q->q.edns);

		if (n < len)
			atomic_fetch_add(&r->truncated, 1);
		memset(&mh, 0, sizeof(mh));
		memset(&u, 0, sizeof(u));
		iov.iov_base = msg;
		iov.iov_len = n;
		mh.msg_name = (void *)&q->peer;
		mh.msg_namelen = net_sa_len(&q->peer);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		cm = (struct cmsghdr *)u.buf;
		if (q->peer.ss_family == AF_INET6) { /* from the address the query reached */
			struct in6_pktinfo pi = {.ipi6_addr = q->local6, .ipi6_ifindex = (unsigned)q->ifindex};
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		} else {
			struct in_pktinfo pi = {.ipi_spec_dst = q->local4};
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
		if (sendmsg(q->udp_fd, &mh, MSG_DONTWAIT) < 0)
			log_debug("dns: reply lost: %s", strerror(errno));
		return;
	}
	if (q->tc && !q->tc->dead) {
		uint8_t l[2] = {(uint8_t)(len >> 8), (uint8_t)len};
		struct tclient *tc = q->tc;

		if (buf_append(&tc->out, &tc->out_len, &tc->out_cap, l, 2, TC_OUT_MAX) < 0 ||
		    buf_append(&tc->out, &tc->out_len, &tc->out_cap, msg, len, TC_OUT_MAX) < 0) {
			tc->dead = 1; /* it does not read its answers */
			return;
		}
		if (!tc->busy) /* else its handler flushes once for all */
			tc_flush(tc);
	}
}

static void reply_rcode(struct resolver *r, const struct rq *q, int rcode, const char *how)
{
	uint8_t out[DNS_HEADER + DNS_NAME_MAX + 4];
	int n = dns_build_error(&q->q, q->msg, q->len, rcode, out, sizeof(out));
	uint64_t ms = ev_now_ms() - q->t0;

	if (n > 0)
		send_reply(r, q, out, (size_t)n);
	count_answer(r, q->e.proxy_id ? &q->client : NULL, q->e.proxy_id, rcode, 0, ms);
	log_query(r, q, how, rcode, ms);
}

/* ---- queries ---- */

static void rq_free(struct resolver *r, struct rq *q)
{
	if (q->uc) {
		q->uc->slot[q->up_id & (UC_SLOTS - 1)] = NULL;
		q->uc->pending--;
		q->uc = NULL;
	}
	if (q->tc)
		q->tc->pending--;
	if (q->cc) {
		q->cc->pending--;
		cc_release(r, q->cc);
	}
	if (q->prev)
		q->prev->next = q->next;
	else
		r->rqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	r->n_rqs--;
	explicit_bzero(&q->e, sizeof(q->e));
	free(q->msg);
	free(q);
}

/* q is finished (answered or given up): free it; its TCP client may take more queries now. */
static void rq_done(struct resolver *r, struct rq *q)
{
	struct tclient *tc = q->tc;

	rq_free(r, q);
	if (!tc || tc->busy)
		return;
	if (tc->dead)
		tc_close(tc);
	else
		tc_process(tc);
}

static void uc_close(struct upconn *uc, int penalty);
static void rq_send(struct resolver *r, struct rq *q);

/* This attempt failed: the next resolver, or SERVFAIL when none is left or time is up. */
static void rq_retry(struct resolver *r, struct rq *q, const char *why)
{
	uint64_t now = ev_now_ms();

	if (q->uc) {
		q->uc->slot[q->up_id & (UC_SLOTS - 1)] = NULL;
		q->uc->pending--;
		q->uc = NULL;
	}
	atomic_fetch_add(&r->upstream_fail, 1);
	q->attempt++;
	if (q->attempt > r->conf.n || now >= q->deadline) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, why);
		rq_done(r, q);
		return;
	}
	rq_send(r, q);
}

static void uc_io(struct upconn *uc, uint32_t events);

static void uc_free(struct upconn *uc)
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

/* Close the connection (the object stays: it remembers a penalty); its queries move on. */
static void uc_close(struct upconn *uc, int penalty)
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
	uc->out_len = uc->in_len = 0;
	if (penalty)
		uc->penalty_until = ev_now_ms() + UC_PENALTY_MS;
	if (uc->pending) { /* detach them all first: a retry may reopen this very connection */
		struct rq *moved[UC_SLOTS];
		unsigned n = 0;

		for (unsigned i = 0; i < UC_SLOTS; i++)
			if (uc->slot[i]) {
				moved[n++] = uc->slot[i];
				uc->slot[i]->uc = NULL;
				uc->slot[i] = NULL;
			}
		uc->pending = 0;
		for (unsigned i = 0; i < n; i++)
			rq_retry(r, moved[i], "resolver connection failed");
	}
}

static void uc_fail(struct upconn *uc, const char *what, const char *detail)
{
	log_warnx("dns: resolver %s:%u through proxy %lld: %s%s%s", uc->up.host, uc->up.port, (long long)uc->e.proxy_id,
		  what, detail ? ": " : "", detail ? detail : "");
	uc_close(uc, 1);
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
	return 0;
}

static int same_proxy(const struct fwd_entry *a, const struct fwd_entry *b)
{
	return a->proxy_id == b->proxy_id && a->endpoint == b->endpoint && a->type == b->type &&
	       memcmp(&a->proxy, &b->proxy, sizeof(a->proxy)) == 0 && strcmp(a->user, b->user) == 0 &&
	       strcmp(a->pass, b->pass) == 0;
}

static struct upconn *uc_find(struct resolver *r, const struct fwd_entry *e, int idx, int create)
{
	struct upconn *uc;

	for (uc = r->ucs; uc; uc = uc->next)
		if (uc->idx == idx && uc->conf_gen == r->conf.gen && same_proxy(&uc->e, e))
			return uc;
	if (!create || !(uc = calloc(1, sizeof(*uc))))
		return NULL;
	uc->r = r;
	uc->e = *e;
	uc->idx = idx;
	uc->conf_gen = r->conf.gen;
	uc->up = r->conf.up[idx];
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

static void rq_send(struct resolver *r, struct rq *q)
{
	int idx = (q->first + q->attempt) % r->conf.n;
	struct upconn *uc = uc_find(r, &q->e, idx, 1);
	uint64_t now = ev_now_ms();

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
	q->attempt_deadline = now + RESOLVER_ATTEMPT_MS < q->deadline ? now + RESOLVER_ATTEMPT_MS : q->deadline;
	if (uc_enqueue(uc, q) < 0) {
		rq_retry(r, q, "resolver connection full");
		return;
	}
	if (uc->state == UC_READY)
		uc_io(uc, EPOLLOUT);
}

/* The first resolver to try: the first one not penalised for a recent failure. */
static int first_resolver(struct resolver *r, const struct fwd_entry *e)
{
	uint64_t now = ev_now_ms();

	for (int i = 0; i < r->conf.n; i++) {
		struct upconn *uc = uc_find(r, e, i, 0);
		if (!uc || uc->penalty_until <= now)
			return i;
	}
	return 0;
}

/* An answer for q from its resolver. */
static void rq_answer(struct resolver *r, struct rq *q, uint8_t *msg, size_t len)
{
	struct dns_answer a;
	uint64_t ms;

	if (dns_parse_answer(msg, len, &q->q, &a) < 0) {
		rq_retry(r, q, "malformed answer from the resolver");
		return;
	}
	if ((a.rcode == DNS_RCODE_SERVFAIL || a.rcode == DNS_RCODE_REFUSED || a.rcode == DNS_RCODE_NOTIMP) &&
	    q->attempt + 1 < r->conf.n && ev_now_ms() < q->deadline) {
		rq_retry(r, q, "resolver refused"); /* another may help; the last one's word is passed on */
		return;
	}
	memcpy(msg + DNS_HEADER, q->msg + DNS_HEADER, q->q.question_end - DNS_HEADER); /* the client's case */
	dns_set_id(msg, q->q.id);
	if (q->uc && q->uc->conf_gen == r->conf.gen) { /* not an answer from resolvers since replaced */
		memcpy(r->scratch, msg, len);
		dns_cache_put(r->cache, q->path, &q->q, r->scratch, dns_strip_opt(r->scratch, len), a.ttl, ev_now_ms());
	}
	ms = ev_now_ms() - q->t0;
	send_reply(r, q, msg, len);
	count_answer(r, &q->client, q->e.proxy_id, a.rcode, 0, ms);
	log_query(r, q, "resolved", a.rcode, ms);
	rq_done(r, q);
}

/* ---- upstream connection I/O ---- */

static ssize_t uc_read(struct upconn *uc, uint8_t *buf, size_t n)
{
	ssize_t k;

	if (!uc->tls)
		return recv(uc->fd, buf, n, 0);
	k = gnutls_record_recv(uc->tls, buf, n);
	if (k >= 0)
		return k;
	errno = k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED ? EAGAIN : EIO;
	return -1;
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
	errno = k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED ? EAGAIN : EIO;
	return -1;
}

static void uc_tls_step(struct upconn *uc)
{
	int k = gnutls_handshake(uc->tls);

	if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) {
		uc_want(uc, gnutls_record_get_direction(uc->tls) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (k < 0) {
		char why[400];
		dns_tls_error(uc->tls, k, why, sizeof(why));
		uc_fail(uc, why, NULL);
		return;
	}
	uc->state = UC_READY;
	uc_io(uc, EPOLLIN | EPOLLOUT);
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
			uc_fail(uc, "write", strerror(errno));
			return;
		}
		buf_consume(uc->out, &uc->out_len, (size_t)k);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		int n = 0;

		/* answers: each a 2-byte length and a message, in any order; at most MSGS_PER_EVENT per
		 * wake-up, so a resolver (or proxy) that floods cannot starve the loop */
		while (n < MSGS_PER_EVENT) {
			ssize_t k = uc_read(uc, uc->in + uc->in_len, sizeof(uc->in) - uc->in_len);
			size_t off = 0;

			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				/* closed: quietly when it carried nothing (an idle connection the server ended) */
				if (uc->pending)
					uc_fail(uc, "connection closed", k < 0 ? strerror(errno) : NULL);
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
			while (uc->in_len - off >= 2) {
				size_t mlen = (size_t)uc->in[off] << 8 | uc->in[off + 1];
				uint8_t msg[DNS_MSG_MAX];
				struct rq *q;
				uint16_t id;

				if (uc->in_len - off < 2 + mlen)
					break;
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

/* ---- the client side ---- */

static void handle_query(struct resolver *r, const uint8_t *m, size_t len, const struct rq *from)
{
	struct rq *q;
	const struct fwd_entry *e;
	uint8_t out[DNS_MSG_MAX];
	size_t n;
	int p;

	atomic_fetch_add(&r->queries, 1);
	atomic_fetch_add(from->udp ? &r->udp : &r->tcp, 1);
	if (!(q = malloc(sizeof(*q))))
		return;
	*q = *from;
	q->len = len > QUERY_MAX ? DNS_HEADER : len; /* too long: only its header is kept, for FORMERR */
	if (!(q->msg = malloc(q->len ? q->len : 1))) {
		free(q);
		return;
	}
	memcpy(q->msg, m, q->len < len ? q->len : len);
	q->cc = NULL;
	q->t0 = ev_now_ms();
	q->deadline = q->t0 + RESOLVER_QUERY_MS;
	q->prev = NULL;
	q->next = r->rqs;
	if (r->rqs)
		r->rqs->prev = q;
	r->rqs = q;
	r->n_rqs++;
	if (q->tc)
		q->tc->pending++;
	p = len > QUERY_MAX ? -EBADMSG : dns_parse_query(m, len, &q->q);
	if (len > QUERY_MAX)
		q->q.question_end = 0, q->q.id = (uint16_t)(m[0] << 8 | m[1]);
	if (p == -EPROTO) { /* a response sent to us: never answered (no loops) */
		rq_done(r, q);
		return;
	}
	if (p < 0) {
		reply_rcode(r, q, p == -EOPNOTSUPP ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR, "malformed");
		rq_done(r, q);
		return;
	}
	pthread_rwlock_rdlock(&r->sh->lock);
	e = table_lookup(r->sh->table, &q->client);
	if (e)
		q->e = *e;
	if (r->sh->dns.gen != r->conf.gen) { /* other resolvers: answers from the old ones go */
		if (r->conf.gen != UINT64_MAX)
			dns_cache_clear(r->cache);
		memcpy(r->conf.up, r->sh->dns.up, sizeof(r->conf.up));
		r->conf.n = r->sh->dns.n;
		r->conf.query_log = r->sh->dns.query_log;
		r->conf.gen = r->sh->dns.gen;
	}
	pthread_rwlock_unlock(&r->sh->lock);
	if (!e || q->e.state != FWD_ACTIVE) {
		/* unknown, disabled or blocked: REFUSED at once; a proxy that is down: SERVFAIL, so
		 * the device asks again later rather than giving up on the name */
		int down = e && q->e.proxy_down;
		reply_rcode(r, q, down ? DNS_RCODE_SERVFAIL : DNS_RCODE_REFUSED,
			    !e	   ? "not mapped"
			    : down ? "proxy down"
				   : "blocked");
		rq_done(r, q);
		return;
	}
	if (q->e.dns_down || r->conf.n == 0) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "the proxy carries no DNS");
		rq_done(r, q);
		return;
	}
	q->path = path_of(&q->e);
	n = dns_cache_get(r->cache, q->path, &q->q, m, ev_now_ms(), out, sizeof(out));
	if (n > 0) {
		uint64_t ms = ev_now_ms() - q->t0;
		send_reply(r, q, out, n);
		count_answer(r, &q->client, q->e.proxy_id, out[3] & 0xF, 1, ms);
		log_query(r, q, "cache", out[3] & 0xF, ms);
		rq_done(r, q);
		return;
	}
	if (r->n_rqs > RQ_MAX || !(q->cc = cc_get(r, &q->client)) || q->cc->pending >= CLIENT_PENDING_MAX) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "too many queries at once");
		rq_done(r, q);
		return;
	}
	q->cc->pending++;
	q->first = first_resolver(r, &q->e);
	rq_send(r, q);
}

static void on_udp(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct resolver *r = arg;

	(void)ev, (void)events;
	for (int k = 0; k < UDP_BATCH; k++) {
		uint8_t buf[DNS_MSG_MAX];
		union {
			char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} u;
		struct rq from;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh;
		ssize_t n;

		memset(&from, 0, sizeof(from));
		memset(&mh, 0, sizeof(mh));
		mh.msg_name = &from.peer;
		mh.msg_namelen = sizeof(from.peer);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.b;
		mh.msg_controllen = sizeof(u.b);
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				from.local4 = pi.ipi_addr;
			} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				from.local6 = pi.ipi6_addr;
				from.ifindex = (int)pi.ipi6_ifindex;
			}
		}
		if (net_ip_from_sa(&from.peer, &from.client) < 0)
			continue;
		from.udp = 1;
		from.udp_fd = fd;
		handle_query(r, buf, (size_t)n, &from);
	}
}

static void on_tcp_listen(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct resolver *r = arg;

	(void)events;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tclient *tc;

		if (cfd < 0)
			return;
		struct net_ip ip;
		struct ccount *cc = NULL;

		if (net_ip_from_sa(&peer, &ip) < 0 || !(cc = cc_get(r, &ip)) || cc->tcs >= TC_PER_CLIENT) {
			if (cc)
				cc_release(r, cc);
			close(cfd);
			continue;
		}
		if (r->n_tcs >= TC_MAX) { /* full: the connection idle longest makes room, if any is idle */
			struct tclient *idlest = NULL;
			for (struct tclient *t = r->tcs; t; t = t->next)
				if (t->pending == 0 && (!idlest || t->last < idlest->last))
					idlest = t;
			if (idlest)
				tc_close(idlest);
		}
		if (r->n_tcs >= TC_MAX || !(tc = calloc(1, sizeof(*tc)))) {
			cc_release(r, cc);
			close(cfd);
			continue;
		}
		tc->cc = cc;
		cc->tcs++;
		tc->r = r;
		tc->fd = cfd;
		tc->peer = peer;
		tc->last = ev_now_ms();
		tc->ev = EPOLLIN | EPOLLRDHUP;
		tc->h = ev_add_fd(ev, cfd, tc->ev, on_tclient, tc);
		if (!tc->h) {
			cc->tcs--;
			cc_release(r, cc);
			close(cfd);
			free(tc);
			continue;
		}
		tc->next = r->tcs;
		if (r->tcs)
			r->tcs->prev = tc;
		r->tcs = tc;
		r->n_tcs++;
	}
}

/* ---- time ---- */

static void on_tick(struct evloop *ev, void *arg)
{
	struct resolver *r = arg;
	uint64_t now = ev_now_ms();
	struct rq *q;
	struct upconn *uc, *un;
	struct tclient *tc, *tn;

	(void)ev;
	atomic_store(&r->last_tick, now);
again: /* each step answers a query, or moves it to a later attempt: this ends */
	for (q = r->rqs; q; q = q->next) {
		if (now >= q->deadline) {
			reply_rcode(r, q, DNS_RCODE_SERVFAIL, "timed out");
			rq_done(r, q);
			goto again;
		}
		if (q->uc && now >= q->attempt_deadline) {
			struct upconn *slow = q->uc;
			if (slow->state != UC_READY) { /* still connecting: that path is too slow */
				uc_fail(slow, "timed out", "connecting");
			} else {
				slow->penalty_until = now + UC_PENALTY_MS;
				rq_retry(r, q, "resolver timed out");
			}
			goto again;
		}
	}
	for (uc = r->ucs; uc; uc = un) {
		un = uc->next;
		if (uc->pending == 0 && now - uc->last_used > UC_IDLE_MS && now > uc->penalty_until)
			uc_free(uc);
	}
	for (tc = r->tcs; tc; tc = tn) {
		tn = tc->next;
		if (tc->dead || (tc->pending == 0 && now - tc->last > TC_IDLE_MS))
			tc_close(tc);
	}
}

static void on_stop(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)events, (void)arg;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* eventfd: nothing to do */
	}
	ev_stop(ev);
}

static void *resolver_main(void *arg)
{
	struct resolver *r = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	ev_run(r->ev);
	while (r->rqs)
		rq_free(r, r->rqs);
	while (r->ucs)
		uc_free(r->ucs);
	while (r->tcs)
		tc_close(r->tcs);
	for (int b = 0; b < CC_BUCKETS; b++) /* all released by now; anything left is freed here */
		while (r->cc[b]) {
			struct ccount *c = r->cc[b];
			r->cc[b] = c->next;
			free(c);
		}
	return NULL;
}

static int bind_any(int family, int type, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
	int one = 1, fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if ((family == AF_INET6 && setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    (type == SOCK_DGRAM && family == AF_INET &&
	     setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0) ||
	    (type == SOCK_DGRAM && family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (family == AF_INET6 ? bind(fd, (struct sockaddr *)&sa6, sizeof(sa6))
				: bind(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int resolver_start(struct fwd_shared *sh, uint16_t port, const char *ca_file, struct resolver **out, char *err,
		   size_t errlen)
{
	struct resolver *r = calloc(1, sizeof(*r));
	unsigned seed;

	*out = NULL;
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (getrandom(&seed, sizeof(seed), 0) == sizeof(seed))
		srandom(seed);
	pthread_mutex_init(&r->plock, NULL);
	r->sh = sh;
	r->stopfd = r->udp4 = r->udp6 = r->tcp4 = r->tcp6 = -1;
	r->conf.gen = UINT64_MAX; /* read at the first query */
	if (dns_tls_creds(ca_file ? ca_file : "", &r->xcred, err, errlen) < 0) {
		if (!r->xcred)
			goto nomem;
		if (ca_file && ca_file[0])
			goto fail; /* a CA file that holds none: a configuration error, said at start */
		log_warnx("dns: %s", err);
	}
	if (!(r->cache = dns_cache_new(CACHE_ENTRIES, CACHE_BYTES)) || !(r->ev = ev_new()))
		goto nomem;
	r->udp4 = bind_any(AF_INET, SOCK_DGRAM, port);
	r->tcp4 = bind_any(AF_INET, SOCK_STREAM, port);
	if (r->udp4 < 0 || r->tcp4 < 0) {
		snprintf(err, errlen, "PGW_DNS_PORT: cannot listen on port %u: %s", port,
			 strerror(r->udp4 < 0 ? -r->udp4 : -r->tcp4));
		goto fail;
	}
	r->udp6 = bind_any(AF_INET6, SOCK_DGRAM, port);
	r->tcp6 = bind_any(AF_INET6, SOCK_STREAM, port);
	if (r->udp6 < 0 || r->tcp6 < 0)
		log_warnx("dns: no IPv6 listener on port %u: IPv4 clients only", port);
	r->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->stopfd < 0 || !(r->hs[0] = ev_add_fd(r->ev, r->udp4, EPOLLIN, on_udp, r)) ||
	    !(r->hs[1] = ev_add_fd(r->ev, r->tcp4, EPOLLIN, on_tcp_listen, r)) ||
	    (r->udp6 >= 0 && !(r->hs[2] = ev_add_fd(r->ev, r->udp6, EPOLLIN, on_udp, r))) ||
	    (r->tcp6 >= 0 && !(r->hs[3] = ev_add_fd(r->ev, r->tcp6, EPOLLIN, on_tcp_listen, r))) ||
	    !(r->hs[4] = ev_add_fd(r->ev, r->stopfd, EPOLLIN, on_stop, r)) ||
	    !(r->tick = ev_add_timer(r->ev, TICK_MS, TICK_MS, on_tick, r)))
		goto nomem;
	atomic_store(&r->last_tick, ev_now_ms());
	if (pthread_create(&r->thread, NULL, resolver_main, r) != 0)
		goto nomem;
	r->started = 1;
	*out = r;
	return 0;
nomem:
	snprintf(err, errlen, "dns: out of memory");
fail:
	resolver_stop(r);
	return -EIO;
}

void resolver_stop(struct resolver *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	if (r->started) {
		if (write(r->stopfd, &one, sizeof(one)) < 0)
			log_warn("dns: stop");
		pthread_join(r->thread, NULL);
	}
	if (r->ev)
		ev_free(r->ev);
	for (int *fd = &r->stopfd; fd <= &r->tcp6; fd++)
		if (*fd >= 0)
			close(*fd);
	dns_cache_free(r->cache);
	if (r->xcred)
		gnutls_certificate_free_credentials(r->xcred);
	pthread_mutex_destroy(&r->plock);
	free(r);
}

int resolver_alive(struct resolver *r, uint64_t max_ms)
{
	return !r || ev_now_ms() <= atomic_load(&r->last_tick) + max_ms;
}
