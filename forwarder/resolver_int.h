/* resolver_int.h - what the resolver's files share, private to them: resolver.c (the thread,
 * its timers, start and stop, the counters), dnsclient.c (clients over UDP and TCP, queries,
 * answers to clients) and dnsupstream.c (connections to the resolvers through the proxies). */
#ifndef FWD_RESOLVER_INT_H
#define FWD_RESOLVER_INT_H

#include "dnscache.h"
#include "evloop.h"
#include "net.h"
#include "resolver.h"
#include "table.h"
#include "upstream.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RQ_MAX		   4096 /* queries waiting for resolvers, in all: more get SERVFAIL */
#define UC_SLOTS	   1024 /* queries at once on one upstream connection (id: 6-bit turn, 10-bit slot) */
#define UC_PER_RESOLVER	   4	/* connections to one resolver through one proxy (uc_pick) */
#define TC_MAX		   256	/* client TCP connections at once (then the idlest one goes) */
#define TC_IN_MAX	   (2 + DNS_MSG_MAX) /* a client's unread queries: a whole one always fits */
#define TC_PER_CLIENT	   16		     /* of them from one address */
#define CLIENT_PENDING_MAX 256		     /* queries of one client waiting at once: more get SERVFAIL */
#define QUERY_MAX	   4096		     /* a longer query is FORMERR (nothing legitimate is this long) */
#define MSGS_PER_EVENT	   64		     /* messages handled per wake-up of a connection: the loop stays fair */
#define UC_REQUEUE_MAX	   3		     /* re-asks a query gets without spending an attempt (uc_close_as) */
#define UC_UNMATCHED_MAX   256		     /* answers in a row to nothing asked: the connection is closed */
#define TC_PENDING_MAX	   64		     /* queries at once on one client TCP connection */
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

struct rq;
struct upconn;

struct tclient {
	struct resolver *r;
	struct tclient *prev, *next;
	int fd;
	struct ev_handle *h;
	struct sockaddr_storage peer;
	uint8_t *in; /* queries as read: grown while they arrive, up to TC_IN_MAX; freed when empty */
	size_t in_len, in_cap;
	uint8_t *out; /* answers to send: freed once sent */
	size_t out_len, out_cap;
	unsigned pending;
	uint64_t last;
	uint32_t ev;
	int busy, dead; /* busy: in its own handler (closed after); dead: to be closed */
	int eof;	/* the client sent all it will: closed once its answers are out */
	uint64_t tick;	/* the tick that last took its leftover queries */
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
	uint8_t *in; /* answers as read: grown to the longest one, up to 2 + DNS_MSG_MAX; freed on close */
	size_t in_len, in_cap;
	struct rq *slot[UC_SLOTS];
	unsigned pending, unmatched;
	unsigned answered; /* since it was opened: a working connection the server may end */
	uint16_t turn;
	uint64_t last_used, penalty_until;
	uint64_t reopen_after; /* it failed while others to its resolver served: not reopened before */
	uint64_t last_answer;  /* ms: the last answer read (late ones too): 0 none since it was opened */
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
	struct rq *moved;  /* the next one taken off a closing connection (uc_close_as) */
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
	struct net_ip client;
	struct ccount *cc;
	int attempt, first;
	int requeued; /* asked again after a server ended a working connection (no attempt spent) */
	uint64_t t0, sent, attempt_deadline, deadline;
	uint64_t table_gen; /* the mappings' generation its path was last found allowed in */
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
	int tcp_paused;		  /* out of descriptors: the TCP listeners are off until the next tick */
	uint64_t tcp_paused_said; /* ms: said so (at most once a minute) */
	gnutls_certificate_credentials_t xcred;
	struct dns_cache *cache;
	/* Messages held here, not on the stack: the loop's calls nest (an answer ends a TCP
	 * client's wait, which takes its next query, whose connection fails, whose queries end
	 * other clients' waits...), and each is done with its message before anything nests. */
	uint8_t scratch[DNS_MSG_MAX]; /* an answer as the cache keeps it */
	uint8_t answer[DNS_MSG_MAX];  /* an answer as read from a resolver (uc_io) */
	uint8_t reply[DNS_MSG_MAX];   /* an answer from the cache (handle_query) */
	struct ccount *cc[CC_BUCKETS];
	struct tclient *tcs;
	unsigned n_tcs;
	uint64_t ticks; /* on_tick's count: a TCP client's leftover queries are taken once a tick */
	struct upconn *ucs;
	struct rq *rqs;
	unsigned n_rqs;
	struct fwd_dns conf; /* the shared one as of the last query: resolvers, query log, generation */
	uint64_t table_gen;  /* the mappings' generation its queries were last checked against */
	atomic_ullong last_tick;
	/* stats: written by the loop, read by the stats writer */
	atomic_ulong queries, udp, tcp, hits, answered, refused, servfail, formerr, notimp, upstream_fail, truncated,
	    lat[LAT_BUCKETS + 1], lat_ms_sum, uc_opened, requeued;
	pthread_mutex_t plock;
	struct pstat pstats[PROXY_STATS];
};

/* The resolvers for e's queries (its organisation's, else the gateway's); *n how many. */
static inline const struct dns_upstream *res_ups(const struct resolver *r, const struct fwd_entry *e, int *n)
{
	return fwd_dns_for(&r->conf, e->org_id, n);
}

static inline int n_ups(const struct resolver *r, const struct fwd_entry *e)
{
	int n;

	res_ups(r, e, &n);
	return n;
}

/* ---- buffers ---- */

static inline int buf_append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *a, size_t alen, size_t max)
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

/* Room for a read of at least `room` bytes after *len (less once *cap is at max): the buffer grows by
 * doubling from `first`. -ENOMEM when it cannot grow (what it holds is kept). */
static inline int buf_reserve(uint8_t **buf, size_t len, size_t *cap, size_t room, size_t first, size_t max)
{
	size_t ncap = *cap ? *cap : first;
	uint8_t *n;

	if (*cap - len >= room || *cap >= max)
		return 0;
	while (ncap - len < room && ncap < max)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	if (!(n = realloc(*buf, ncap)))
		return -ENOMEM;
	*buf = n;
	*cap = ncap;
	return 0;
}

static inline void buf_consume(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* dnsclient.c */
void log_query(struct resolver *r, const struct rq *q, const char *how, int rcode, uint64_t ms);
void send_reply(struct resolver *r, const struct rq *q, uint8_t *msg, size_t len);
void reply_rcode(struct resolver *r, const struct rq *q, int rcode, const char *how);
void rq_free(struct resolver *r, struct rq *q);
void rq_done(struct resolver *r, struct rq *q);
void tc_close(struct tclient *tc);
void tc_process(struct tclient *tc);
int tc_whole_waiting(const struct tclient *tc);
void on_udp(struct evloop *ev, int fd, uint32_t events, void *arg);
/* resolver.c: the TCP listeners on (EPOLLIN) or off (0: out of descriptors, until the tick) */
void resolver_tcp_listening(struct resolver *r, uint32_t events);
void on_tcp_listen(struct evloop *ev, int fd, uint32_t events, void *arg);
/* dnsupstream.c */
void rq_send(struct resolver *r, struct rq *q);
void rq_retry(struct resolver *r, struct rq *q, const char *why);
int first_resolver(struct resolver *r, const struct fwd_entry *e);
void uc_close(struct upconn *uc, int penalty);
void uc_fail(struct upconn *uc, const char *what, const char *detail);
void uc_silent(struct upconn *uc, struct rq *q);
void uc_free(struct upconn *uc);
void rq_answer(struct resolver *r, struct rq *q, uint8_t *msg, size_t len);
int rq_path_holds(struct resolver *r, struct rq *q);
void rq_revalidate(struct resolver *r);
/* resolver.c */
void count_answer(struct resolver *r, const struct net_ip *client, int64_t proxy_id, int64_t org, int rcode, int hit,
		  uint64_t ms);

#endif
