/* resolver.c - see resolver.h.
 *
 * A query (struct rq) lives from the client's message to its answer: it is sent on an upstream
 * connection (struct upconn: up to UC_PER_RESOLVER per proxy endpoint, credentials and resolver;
 * an idle one where it can), which may carry many at once, each under an id of its own (RFC 7766
 * 6.2.1: pipelined, answered in any order).
 * An attempt that fails or times out moves the query to the next resolver on a connection of
 * its own; a connection that fails hands every query it carried on. The client side is UDP
 * (IP_PKTINFO, so the answer leaves from the address the redirected query reached) and TCP
 * (length-prefixed, several queries per connection). */
#include "resolver_int.h"

#include "log.h"
#include "random.h"
#include "dnstls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static const unsigned lat_le_ms[LAT_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000};

/* ---- stats ---- */

void count_answer(struct resolver *r, const struct net_ip *client, int64_t proxy_id, int64_t org, int rcode, int hit,
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
		stats_client_dns(&r->sh->stats, client, org, hit,
				 rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED, ms);
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
		"\"upstream_connections\":%lu,\"requeued\":%lu,\"latency_ms_sum\":%lu,\"latency_ms_buckets\":{",
		atomic_load(&r->queries), atomic_load(&r->udp), atomic_load(&r->tcp), atomic_load(&r->answered),
		atomic_load(&r->hits), atomic_load(&r->refused), atomic_load(&r->servfail), atomic_load(&r->formerr),
		atomic_load(&r->notimp), atomic_load(&r->upstream_fail), atomic_load(&r->truncated),
		atomic_load(&r->uc_opened), atomic_load(&r->requeued), atomic_load(&r->lat_ms_sum));
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

/* ---- time ---- */

void resolver_tcp_listening(struct resolver *r, uint32_t events)
{
	for (int h = 1; h <= 3; h += 2) /* hs[1], hs[3]: the TCP listeners, IPv4 and IPv6 */
		if (r->hs[h])
			ev_mod_fd(r->ev, r->hs[h], events);
	r->tcp_paused = !events;
}

static void on_tick(struct evloop *ev, void *arg)
{
	struct resolver *r = arg;
	uint64_t now = ev_now_ms();
	struct rq *q;
	struct upconn *uc, *un;
	struct tclient *tc, *tn;

	(void)ev;
	if (r->tcp_paused) /* listening again (on_tcp_listen) */
		resolver_tcp_listening(r, EPOLLIN);
	atomic_store(&r->last_tick, now);
	rq_revalidate(r); /* the mappings changed: no query waits for a path its client lost */
again:			  /* each step answers a query, or moves it to a later attempt: this ends */
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
			} else if (slow->last_answer < q->sent) {
				/* nothing at all came back on it since this query went: a connection the
				 * proxy or resolver holds open but no longer answers on (a new one may) */
				uc_silent(slow, q);
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
		if (tc->dead || (tc->pending == 0 && now - tc->last > TC_IDLE_MS && !tc_whole_waiting(tc)))
			tc_close(tc);
	}
	/* queries past one event's share that were all answered at once: no event comes for the
	 * rest; one share a connection a tick (taking them may end other connections: the list is
	 * walked again after each) */
	r->ticks++;
	for (;;) {
		for (tc = r->tcs; tc; tc = tc->next)
			if (tc->tick != r->ticks && !tc->busy && !tc->dead && tc->pending < TC_PENDING_MAX &&
			    tc_whole_waiting(tc))
				break;
		if (!tc)
			break;
		tc->tick = r->ticks;
		tc_process(tc);
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
	    /* accepted clients inherit it: an answer is not held back (Nagle) until the client
	     * acknowledges the one before, which it does only with its next query when it pipelines */
	    (type == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) ||
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
	if (random_bytes(&seed, sizeof(seed)) == 0)
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
