/* dnsclient.c - the resolver's client side (see resolver.h): queries from LAN devices over UDP
 * (answers from the address the query reached) and TCP (RFC 7766 framing, several at once,
 * half-close), each checked, looked up (table, cache) and answered, or handed to dnsupstream.c;
 * per-client bounds. */
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

/* ---- answering the client ---- */

static void handle_query(struct resolver *r, const uint8_t *m, size_t len, const struct rq *from);

void tc_close(struct tclient *tc)
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
	free(tc->in);
	free(tc->out);
	free(tc);
}

/* Whether a whole query waits in tc's buffer (more than one event takes at once, say). */
int tc_whole_waiting(const struct tclient *tc)
{
	size_t mlen;

	return tc->in_len >= 2 && dns_tcp_next(tc->in, tc->in_len, &mlen) == 1;
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
	if (tc->out_len == 0 && tc->out) { /* all sent: an idle connection holds no buffer */
		free(tc->out);
		tc->out = NULL;
		tc->out_cap = 0;
	}
	if (tc->eof && tc->pending == 0 && tc->out_len == 0 && !tc_whole_waiting(tc)) { /* all answered: done */
		tc->dead = 1;
		return;
	}
	want = (tc->pending < TC_PENDING_MAX && !tc->eof && tc->in_len < TC_IN_MAX ? EPOLLIN | EPOLLRDHUP : 0) |
	       (tc->out_len ? EPOLLOUT : 0);
	if (want != tc->ev && ev_mod_fd(tc->r->ev, tc->h, want) == 0)
		tc->ev = want;
}

/* The whole queries waiting in tc's buffer, while it may have more in flight (at most
 * MSGS_PER_EVENT at a time; the rest on the next wake-up, or at the next tick when nothing
 * else would wake it: resolver_tick). */
void tc_process(struct tclient *tc)
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
		size_t mlen;
		int whole = dns_tcp_next(tc->in + off, tc->in_len - off, &mlen);

		if (mlen < DNS_HEADER) { /* not DNS over TCP: no answer could be framed for it */
			tc->dead = 1;
			break;
		}
		if (!whole)
			break;
		tc->last = ev_now_ms();
		handle_query(tc->r, tc->in + off + 2, mlen, &from);
		off += 2 + mlen;
		n++;
	}
	if (off)
		buf_consume(tc->in, &tc->in_len, off);
	if (tc->in_len == 0 && tc->in) {
		free(tc->in);
		tc->in = NULL;
		tc->in_cap = 0;
	}
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
	if (!tc->dead && !tc->eof && (events & (EPOLLIN | EPOLLRDHUP)) && tc->in_len < TC_IN_MAX) {
		ssize_t k = -1;

		/* room for a typical query or a few; a longer one grows the buffer as it arrives */
		if (buf_reserve(&tc->in, tc->in_len, &tc->in_cap, 512, 512, TC_IN_MAX) < 0)
			errno = ENOMEM;
		else
			k = recv(fd, tc->in + tc->in_len, tc->in_cap - tc->in_len, MSG_DONTWAIT);
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

void log_query(struct resolver *r, const struct rq *q, const char *how, int rcode, uint64_t ms)
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
void send_reply(struct resolver *r, const struct rq *q, uint8_t *msg, size_t len)
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

void reply_rcode(struct resolver *r, const struct rq *q, int rcode, const char *how)
{
	uint8_t out[DNS_ERROR_MAX];
	int n = dns_build_error(&q->q, q->msg, q->len, rcode, out, sizeof(out));
	uint64_t ms = ev_now_ms() - q->t0;

	if (n > 0)
		send_reply(r, q, out, (size_t)n);
	count_answer(r, q->e.proxy_id ? &q->client : NULL, q->e.proxy_id, q->e.org_id, rcode, 0, ms);
	log_query(r, q, how, rcode, ms);
}

/* ---- queries ---- */

void rq_free(struct resolver *r, struct rq *q)
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
void rq_done(struct resolver *r, struct rq *q)
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

/* ---- the client side ---- */

static void handle_query(struct resolver *r, const uint8_t *m, size_t len, const struct rq *from)
{
	struct rq *q;
	struct ccount *cc = NULL;
	const struct fwd_entry *e;
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
	if (len > QUERY_MAX) /* (its FORMERR fits any client: no TC bit for a UDP size never read) */
		q->q.question_end = 0, q->q.id = (uint16_t)(m[0] << 8 | m[1]), q->q.udp_size = DNS_UDP_MIN;
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
	q->table_gen = atomic_load(&r->sh->table_gen); /* the path found allowed in it (rq_path_holds) */
	if (r->sh->dns.gen != r->conf.gen) {	       /* other resolvers: answers from the old ones go */
		if (r->conf.gen != UINT64_MAX)
			dns_cache_clear(r->cache);
		r->conf = r->sh->dns;
	}
	pthread_rwlock_unlock(&r->sh->lock);
	if (!e || q->e.state != FWD_ACTIVE) {
		/* unknown, disabled or blocked: REFUSED at once; a proxy that is down, or mappings
		 * that cannot be read (main.c block_all): SERVFAIL, so the device asks again later
		 * rather than giving up on the name */
		int down = e && (q->e.proxy_down || q->e.unread);
		reply_rcode(r, q, down ? DNS_RCODE_SERVFAIL : DNS_RCODE_REFUSED,
			    !e		  ? "not mapped"
			    : q->e.unread ? "mappings unreadable"
			    : down	  ? "proxy down"
					  : "blocked");
		rq_done(r, q);
		return;
	}
	if (q->e.dns_down || n_ups(r, &q->e) == 0) {
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "the proxy carries no DNS");
		rq_done(r, q);
		return;
	}
	n = dns_cache_get(r->cache, q->e.path, &q->q, m, ev_now_ms(), r->reply, sizeof(r->reply));
	if (n > 0) {
		uint64_t ms = ev_now_ms() - q->t0;
		int rcode = r->reply[3] & 0xF;
		send_reply(r, q, r->reply, n);
		count_answer(r, &q->client, q->e.proxy_id, q->e.org_id, rcode, 1, ms);
		log_query(r, q, "cache", rcode, ms);
		rq_done(r, q);
		return;
	}
	/* q->cc only once counted: rq_free takes back what was given (a refused query was not) */
	if (r->n_rqs > RQ_MAX || !(cc = cc_get(r, &q->client)) || cc->pending >= CLIENT_PENDING_MAX) {
		cc_release(r, cc);
		reply_rcode(r, q, DNS_RCODE_SERVFAIL, "too many queries at once");
		rq_done(r, q);
		return;
	}
	q->cc = cc;
	cc->pending++;
	q->first = first_resolver(r, &q->e);
	rq_send(r, q);
}

void on_udp(struct evloop *ev, int fd, uint32_t events, void *arg)
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

void on_tcp_listen(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct resolver *r = arg;

	(void)events;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tclient *tc;

		if (cfd < 0) {
			/* out of descriptors: a level-triggered listener would wake the loop at once
			 * again; the tick (100 ms) listens again */
			if ((errno == EMFILE || errno == ENFILE) && !r->tcp_paused) {
				resolver_tcp_listening(r, 0);
				if (ev_now_ms() >= r->tcp_paused_said + 60000) {
					log_warnx("dns: out of descriptors: TCP clients wait (LimitNOFILE)");
					r->tcp_paused_said = ev_now_ms();
				}
			}
			return;
		}
		struct net_ip ip;
		struct ccount *cc = NULL;

		if (net_ip_from_sa(&peer, &ip) < 0 || !(cc = cc_get(r, &ip)) || cc->tcs >= TC_PER_CLIENT) {
			if (cc)
				cc_release(r, cc);
			close(cfd);
			continue;
		}
		/* counted before room is made: closing the address's own idle connection must not free cc */
		cc->tcs++;
		if (r->n_tcs >= TC_MAX) { /* full: the connection idle longest makes room, if any is idle */
			struct tclient *idlest = NULL;
			for (struct tclient *t = r->tcs; t; t = t->next)
				if (t->pending == 0 && (!idlest || t->last < idlest->last))
					idlest = t;
			if (idlest)
				tc_close(idlest);
		}
		if (r->n_tcs >= TC_MAX || !(tc = calloc(1, sizeof(*tc)))) {
			cc->tcs--;
			cc_release(r, cc);
			close(cfd);
			continue;
		}
		tc->cc = cc;
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
