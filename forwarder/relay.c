/* relay.c - see relay.h: one connection's life in a worker (workers.c runs the threads). */
#include "relay.h"

#include "log.h"
#include "pool.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/sockios.h>
#include "net.h"
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PIPE_SIZE     (256 * 1024) /* 1 MiB measured ~5% faster, but bounds kernel memory per slow client 4x higher */
#define ACCEPT_BATCH  64
#define REPORT_GAP_MS 1000 /* passive health: at most one report per proxy per second per worker */
#define EARLY_WAIT_MS                                                                                                  \
	20 /* a ready session waits this long for them (a protocol where the server speaks                             \
	      first pays it once) */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h, which clashes with libc headers */
#endif

static int pipe_new(int p[2])
{
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

/* An empty pipe from the worker's pool, or a new one sized PIPE_SIZE. */
static int pipe_get(struct worker *w, int p[2])
{
	if (w->n_pipes) {
		w->n_pipes--;
		p[0] = w->pipes[w->n_pipes][0];
		p[1] = w->pipes[w->n_pipes][1];
		return 0;
	}
	return pipe_new(p);
}

/* The pool holds PIPE_RESERVE pipes, or -1: the descriptor table has no room for them. */
static int pipe_reserve(struct worker *w)
{
	while (w->n_pipes < PIPE_RESERVE) {
		if (pipe_new(w->pipes[w->n_pipes]) < 0)
			return -1;
		w->n_pipes++;
	}
	return 0;
}

/* Out of descriptors: an empty pipe beyond the reserve gives its two back (1), or none is
 * spare (0). */
static int pipe_trim(struct worker *w)
{
	if (w->n_pipes <= PIPE_RESERVE)
		return 0;
	w->n_pipes--;
	close(w->pipes[w->n_pipes][0]);
	close(w->pipes[w->n_pipes][1]);
	return 1;
}

/* A pipe or a connection's (or a ready session's) descriptors are free: the connections waiting
 * for a pipe try again from the loop (not from here: the caller may be walking the connections). */
void pipe_line_wake(struct worker *w)
{
	if (!TAILQ_EMPTY(&w->pipe_line) && !w->pipe_armed && ev_timer_set(w->pipe_timer, 0, 0) == 0)
		w->pipe_armed = 1;
}

static void pipe_unwait(struct conn *c)
{
	struct worker *w = c->w;

	if (!c->pipe_waiting)
		return;
	TAILQ_REMOVE(&w->pipe_line, c, pw);
	c->pipe_waiting = 0;
}

/* Waiting for a pipe and holding none: not idle, whatever its last bytes (one that holds a pipe,
 * e.g. its reader stalled, times out as idle as usual and gives it back). */
static int waiting_empty(const struct conn *c)
{
	return c->pipe_waiting && c->pipe_up[0] < 0 && c->pipe_down[0] < 0;
}

/* No pipe to be had (out of descriptors, the reserve in use): c's bytes stay in its socket, and it
 * waits, last in line, for a pipe to come back. */
static void pipe_wait(struct conn *c)
{
	struct worker *w = c->w;

	if (c->pipe_waiting)
		return;
	TAILQ_INSERT_TAIL(&w->pipe_line, c, pw);
	c->pipe_waiting = 1;
	w->pipe_waits++;
}

/* Back to the pool only when empty: a pipe with bytes in it is closed. */
static void pipe_put(struct worker *w, int p[2], size_t left)
{
	if (p[0] < 0)
		return;
	if (left == 0 && w->n_pipes < PIPE_POOL && !w->draining) {
		w->pipes[w->n_pipes][0] = p[0];
		w->pipes[w->n_pipes][1] = p[1];
		w->n_pipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	pipe_line_wake(w);
	p[0] = p[1] = -1;
}

static void fmt_addr(const struct sockaddr_storage *a, char *buf, size_t cap)
{
	char ip[NET_IP_STR_MAX];
	struct net_ip n;

	if (net_ip_from_sa(a, &n) < 0) {
		snprintf(buf, cap, "-");
		return;
	}
	net_ip_str(&n, ip);
	snprintf(buf, cap, net_ip_is4(&n) ? "%s:%u" : "[%s]:%u", ip, net_sa_port(a));
}

static void dest_failure(struct conn *c, enum fwd_destfail kind);

/* Off the worker's list of connections waiting for their first bytes (if on it). */
static void unwait(struct conn *c)
{
	struct worker *w = c->w;

	if (!c->early_until)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		w->wait_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		w->wait_tail = c->wprev;
	c->wprev = c->wnext = NULL;
	c->early_until = 0;
}

/* A cut, not an end: both sides get a reset, not a FIN, so that neither takes what it got for
 * all there was (a reply read to its close, an upload), as a direct connection would say:
 * - cut by pgw: a revoked path, an admin; while relaying, the quota, the end of a drain, an
 *   internal error; the part of the proxy's bytes the client got before no pipe was left for the
 *   rest (start_relay);
 * - the proxy's side reset (the client is told) or the client's (the destination is told).
 * An idle timeout ends with FIN (nothing was under way); so do handshake failures and refusals
 * (nothing relayed). */
static int ends_with_reset(const struct conn *c, enum fwd_close why)
{
	switch (why) {
	case CLOSE_REVOKED:
	case CLOSE_ADMIN:
	case CLOSE_UPSTREAM_RESET:
	case CLOSE_CLIENT_RESET:
		return 1;
	case CLOSE_QUOTA: /* (refused at accept, or before the proxy answered: nothing relayed, a FIN) */
	case CLOSE_SHUTDOWN:
	case CLOSE_INTERNAL:
		return c->relaying;
	case CLOSE_NO_DESCRIPTORS:
		return c->bytes_down > 0;
	default:
		return 0;
	}
}

/* Closes fd (if open): with a reset (SO_LINGER 0) when rst, else with a FIN. */
static void end_socket(int fd, int rst)
{
	struct linger now = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return;
	if (rst)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
	close(fd);
}

/* Bytes the socket was given that its peer has not acknowledged: a reset now would drop them. */
static int unsent(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int n = 0;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE)
		return 0; /* the client reset it (or it died): nothing will go */
	return ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0 ? n : 0;
}

/* The proxy's side reset, or the quota cut, with bytes still on their way to the client: they
 * were relayed (and counted), so they reach it first, and the reset after them, at the tick that
 * finds them gone (or none taken for RESET_STALL_MS, or RESET_WAIT_MS on; or at a revalidation
 * that finds the client no longer active: resets_of_gone). The socket is out of the loop
 * meanwhile. */
static int reset_later(struct conn *c, enum fwd_close why)
{
	struct worker *w = c->w;
	uint64_t now = ev_now_ms();
	int left;

	if ((why != CLOSE_UPSTREAM_RESET && why != CLOSE_QUOTA) || c->cfd < 0 || w->n_resets == RESET_WAIT_MAX ||
	    !(left = unsent(c->cfd)))
		return 0;
	ev_del(w->ev, c->ch); /* its descriptor stays open */
	c->ch = NULL;
	struct reset_wait *r = &w->resets[w->n_resets++];
	*r = (struct reset_wait){.fd = c->cfd, .left = left, .moved = now, .until = now + RESET_WAIT_MS};
	r->has_client = net_ip_from_sa(&c->client, &r->client) == 0;
	c->cfd = -1;
	return 1;
}

/* A revalidation: the held sockets of clients no longer active are due now (relay_resets_due
 * sends their resets). The agent deletes such a client's conntrack state 300 ms after its block:
 * the bytes held go only until then (its ACKs pass as an established connection's), and a reset
 * sent after that leaves without REDIRECT's reply mapping, so the client never takes it (it
 * waits for its own timeout). Called under the table's lock. */
static void resets_of_gone(struct worker *w)
{
	for (unsigned i = 0; i < w->n_resets; i++) {
		struct reset_wait *r = &w->resets[i];
		const struct fwd_entry *e = r->has_client ? table_lookup(w->sh->table, &r->client) : NULL;

		if (r->has_client && (!e || e->state != FWD_ACTIVE)) /* (no address: as a relay, kept) */
			r->until = 0;
	}
}

void relay_resets_due(struct worker *w, uint64_t now, int all)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < w->n_resets; i++) {
		struct reset_wait *r = &w->resets[i];
		int left = all ? 0 : unsent(r->fd);

		if (left && left != r->left) {
			r->left = left;
			r->moved = now;
		}
		if (!left || now >= r->until || (now > r->moved && now - r->moved >= RESET_STALL_MS))
			end_socket(r->fd, 1);
		else
			w->resets[keep++] = *r;
	}
	w->n_resets = keep;
}

static void count_relayed(struct conn *c, uint64_t up, uint64_t down);

void conn_close(struct conn *c, enum fwd_close why, enum upstream_result up)
{
	struct worker *w = c->w;
	struct fwd_stats *s = &w->sh->stats;
	char cid[32], cl[64], dst[64], reason[96] = "";
	uint64_t now = ev_now_ms();
	/* "succeeded", then closed by the proxy's side with nothing sent back, at once: a proxy that
	 * answers before it has connected, and then could not */
	int early = c->relaying && c->bytes_down == 0 && now - c->t_relay < DESTFAIL_EARLY_MS &&
		    (why == CLOSE_UPSTREAM_RESET || why == CLOSE_DONE) && c->upstream_first;
	int rst = ends_with_reset(c, why);

	if (why == CLOSE_UPSTREAM_RESET && c->in_down > 0 && c->cfd >= 0) {
		/* what the proxy sent before its reset, read already: to the client, as far as its
		 * socket takes it now (the rest is lost with the pipe) */
		ssize_t n = splice(c->pipe_down[0], NULL, c->cfd, NULL, c->in_down, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			c->in_down -= (size_t)n;
			count_relayed(c, 0, (uint64_t)n);
		}
	}
	snprintf(cid, sizeof(cid), "c%u-%llu", w->index, (unsigned long long)c->id);
	fmt_addr(&c->client, cl, sizeof(cl));
	fmt_addr(&c->dst, dst, sizeof(dst));
	if (why == CLOSE_UPSTREAM && c->hs) {
		reason[0] = ':';
		upstream_reason(c->hs, up, reason + 1, sizeof(reason) - 1);
	} else if (why == CLOSE_UPSTREAM) {
		snprintf(reason, sizeof(reason), ":%s", upstream_result_str(up));
	}
	log_info_id(cid, "conn client=%s dst=%s proxy=%lld up=%llu down=%llu ms=%llu close=%s%s%s%s%s%s", cl, dst,
		    (long long)c->map.proxy_id, (unsigned long long)c->bytes_up, (unsigned long long)c->bytes_down,
		    (unsigned long long)(now - c->t_start), fwd_close_str(why), reason,
		    early ? " closed_after_connect" : "", c->map.pipeline ? " pipelined" : "",
		    c->from_pool ? " preconnected" : "", c->sent_early ? " early_data" : "");
	if (early)
		dest_failure(c, DF_CLOSED_AFTER_CONNECT);
	atomic_fetch_add(&s->closes[why], 1);
	if (c->early_len && !c->sent_early) /* read, never delivered: the quota has them back */
		stats_quota_give(c->cs, c->early_len);
	if (c->counted) /* its count down (an admin's close is no failure): the counters may be freed */
		stats_client_closed(s, c->cs, why != CLOSE_DONE && why != CLOSE_ADMIN);
	c->cs = NULL; /* no use of it after this */
	if (why == CLOSE_UPSTREAM)
		atomic_fetch_add(&s->upstream_errors[up], 1);
	atomic_fetch_sub(&s->active, 1);
	pthread_mutex_lock(&w->list_lock); /* gone for the control socket before anything is freed */
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	pthread_mutex_unlock(&w->list_lock);
	unwait(c);
	if (rst)
		reset_later(c, why);
	ev_forget(w->ev, c->ch); /* both closed below */
	ev_forget(w->ev, c->uh);
	end_socket(c->cfd, rst);
	end_socket(c->ufd, rst);
	pipe_put(w, c->pipe_up, c->in_up);
	pipe_put(w, c->pipe_down, c->in_down);
	pipe_unwait(c);
	pipe_line_wake(w); /* its descriptors may make a pipe */
	if (c->hs) {
		upstream_hs_wipe(c->hs);
		free(c->hs);
	}
	free(c->early);
	explicit_bzero(&c->map, sizeof(c->map));
	free(c);
}

/* Passive health: tell healthd at once that this proxy failed (rate-limited). */
static void report_failure(struct worker *w, int64_t proxy_id, const char *why)
{
	struct notify_msg m = {.type = NOTIFY_UPSTREAM_FAILED, .id = proxy_id};
	uint64_t now = ev_now_ms(), *last = &w->last_report[(uint64_t)proxy_id & 255];

	if (!w->nt || now - *last < REPORT_GAP_MS)
		return;
	*last = now;
	snprintf(m.text, sizeof(m.text), "%s", why);
	notify_send(w->nt, "healthd", &m);
}

/* The destination as destfail counts it: its address and port. */
static uint64_t dst_key(const struct sockaddr_storage *a)
{
	struct net_ip ip;
	uint64_t h = 14695981039346656037ull ^ net_sa_port(a);

	if (net_ip_from_sa(a, &ip) == 0)
		for (const unsigned char *p = (const unsigned char *)&ip; p < (const unsigned char *)(&ip + 1); p++)
			h = (h ^ *p) * 1099511628211ull;
	return h;
}

/* The proxy could not reach this connection's destination (kind): counted; the proxy is
 * reported only when destinations fail across the board (destfail.h). */
static void dest_failure(struct conn *c, enum fwd_destfail kind)
{
	struct fwd_shared *sh = c->w->sh;
	char why[96];

	atomic_fetch_add(&sh->stats.dest_failures[kind], 1);
	if (!destfail_failed(&sh->destfail, c->map.proxy_id, dst_key(&c->dst), ev_now_ms()))
		return;
	atomic_fetch_add(&sh->stats.dest_reports, 1);
	snprintf(why, sizeof(why), "%d destinations failed (%s)", DESTFAIL_SPREAD, fwd_destfail_str(kind));
	report_failure(c->w, c->map.proxy_id, why);
}

static enum fwd_destfail destfail_kind(const struct upstream_hs *hs)
{
	if (hs->type == UPSTREAM_HTTP)
		return hs->detail == 403   ? DF_HTTP_403
		       : hs->detail == 502 ? DF_HTTP_502
		       : hs->detail == 503 ? DF_HTTP_503
					   : DF_HTTP_504;
	return hs->detail == 2	 ? DF_SOCKS_RULESET
	       : hs->detail == 3 ? DF_SOCKS_NET
	       : hs->detail == 4 ? DF_SOCKS_HOST
	       : hs->detail == 5 ? DF_SOCKS_REFUSED
	       : hs->detail == 8 ? DF_SOCKS_ATYP
				 : DF_SOCKS_TTL;
}

/* Move bytes src -> pipe -> dst. A client with a quota reads only what its quota gives
 * (stats_quota_take: taken at the read, so no connection of the client can read the same bytes
 * again, whichever worker it is on). *rd, *wr: src may have bytes, dst may take some (set by
 * their events, cleared at EAGAIN: edge-triggered, so a side that said EAGAIN is not tried again
 * before its next edge). Returns 0, or -1 when the connection must close (*why set). */
static int pump(struct conn *c, int src, int dst, int p[2], size_t *inpipe, int *eof, int *shut, uint64_t *count,
		int *rd, int *wr, enum fwd_close *why, enum fwd_close reset_src, enum fwd_close reset_dst)
{
	for (;;) {
		int progress = 0;
		ssize_t n;
		size_t held = 0, want = *rd && *inpipe < PIPE_SIZE && !*eof ? PIPE_SIZE - *inpipe : 0,
		       room = want ? stats_quota_take(c->cs, want, &held) : 0;

		/* none to read with: used up, or another worker's read holds the last of it for now.
		 * No edge will say which: the tick tries again (and closes it if used up) */
		if (want && !room)
			c->quota_wait = 1;

		if (room > 0 && p[0] < 0 && pipe_get(c->w, p) < 0) {
			stats_quota_done(c->cs, held, held); /* no descriptor for a pipe: not read, for now */
			pipe_wait(c);
			return 0;
		}
		if (room > 0) { /* keep reading while the pipe has room (and the quota) */
			n = splice(src, NULL, p[1], NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			stats_quota_done(c->cs, held, n > 0 ? room - (size_t)n : room);
			if (n > 0) {
				*inpipe += (size_t)n;
				progress = 1;
			} else if (n == 0) {
				*eof = 1;
				progress = 1;
			} else if (errno == EAGAIN) {
				/* an empty pipe: the socket has nothing. Else the pipe may be what is full (its
				 * slots hold partial pages): src stays worth trying once the pipe drains */
				if (*inpipe == 0)
					*rd = 0;
			} else {
				*why = reset_src;
				return -1;
			}
		}
		if (*inpipe > 0 && *wr) {
			n = splice(p[0], NULL, dst, NULL, *inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				*inpipe -= (size_t)n;
				*count += (uint64_t)n;
				progress = 1;
			} else if (n < 0 && errno == EAGAIN) {
				*wr = 0;
			} else if (n < 0) {
				*why = reset_dst;
				return -1;
			}
		}
		if (*eof && *inpipe == 0 && !*shut) {
			/* half-close: the other direction may go on. When it has ended too (dst sent its
			 * FIN and all it sent was read), the close that follows sends this FIN */
			if (!(shut == &c->shut_u ? c->shut_c : c->shut_u))
				shutdown(dst, SHUT_WR);
			*shut = 1;
		}
		if (!progress) {
			if (*inpipe == 0) /* idle: the pipe goes back, held only while data is in flight */
				pipe_put(c->w, p, 0);
			return 0;
		}
	}
}

/* up and down bytes c relayed just now: into its own count, the worker's and its client's. */
static void count_relayed(struct conn *c, uint64_t up, uint64_t down)
{
	if (!up && !down)
		return;
	c->bytes_up += up;
	c->bytes_down += down;
	atomic_fetch_add(&c->w->sh->stats.bytes_up, up);
	atomic_fetch_add(&c->w->sh->stats.bytes_down, down);
	stats_client_bytes(c->cs, up, down);
}

/* events: of the proxy's side (from_u) or the client's. */
static void relay_io(struct conn *c, int from_u, uint32_t events)
{
	uint64_t up = 0, down = 0; /* relayed by the pumps just now */
	enum fwd_close why = CLOSE_INTERNAL;
	int failed;

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		*(from_u ? &c->rd_u : &c->rd_c) = 1;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		*(from_u ? &c->wr_u : &c->wr_c) = 1;
	if (stats_quota_left(c->cs) <= 0 && c->in_up == 0 && c->in_down == 0) {
		conn_close(c, CLOSE_QUOTA, UP_OK); /* used up (by this connection or another of its) */
		return;
	}
	failed = pump(c, c->cfd, c->ufd, c->pipe_up, &c->in_up, &c->eof_c, &c->shut_u, &up, &c->rd_c, &c->wr_u, &why,
		      CLOSE_CLIENT_RESET, CLOSE_UPSTREAM_RESET) < 0 ||
		 pump(c, c->ufd, c->cfd, c->pipe_down, &c->in_down, &c->eof_u, &c->shut_c, &down, &c->rd_u, &c->wr_c,
		      &why, CLOSE_UPSTREAM_RESET, CLOSE_CLIENT_RESET) < 0;

	count_relayed(c, up, down);
	if (failed) {
		conn_publish(c);
		/* a reset from the proxy's side with the client's still open */
		c->upstream_first |= why == CLOSE_UPSTREAM_RESET && !c->eof_c;
		conn_close(c, why, UP_OK);
		return;
	}
	if (up || down) {
		c->t_active = ev_now_ms();
		conn_publish(c);
	}
	if (stats_quota_left(c->cs) <= 0 && c->in_up == 0 && c->in_down == 0) { /* its last byte delivered */
		conn_close(c, CLOSE_QUOTA, UP_OK);
		return;
	}
	if (down && c->bytes_down == down) /* the far side answered: the proxy reaches destinations */
		destfail_ok(&c->w->sh->destfail, c->map.proxy_id);
	if (c->eof_u && !c->eof_c && !c->upstream_first && c->bytes_down == 0)
		c->upstream_first = 1; /* the proxy's side ended first, having sent nothing */
	if (c->shut_c && c->shut_u) {
		conn_close(c, CLOSE_DONE, UP_OK);
		return;
	}
	/* an error that moved nothing: end it here, as the side it came from */
	if ((events & EPOLLERR) && !up && !down) {
		c->upstream_first |= from_u && !c->eof_c;
		conn_close(c, from_u ? CLOSE_UPSTREAM_RESET : CLOSE_CLIENT_RESET, UP_OK);
	}
}

static int start_relay(struct conn *c)
{
	int one = 1, drained_u;

	setsockopt(c->ufd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (c->from_pool) { /* the session's short TCP_USER_TIMEOUT was for its request only */
		unsigned zero = 0;
		setsockopt(c->ufd, IPPROTO_TCP, TCP_USER_TIMEOUT, &zero, sizeof(zero));
	}
	/* bytes the proxy sent after its reply (the answer to early data, often) belong to the client:
	 * straight to it, its socket has room at the start (no pipe needed, one call instead of two);
	 * what it does not take goes first into the pipe. Pipes are otherwise taken by pump() when
	 * data comes and given back when it has gone. They were read with the reply, not through the
	 * quota: charged as they go on (at most 8 KiB past it; the connection ends once they are out). */
	if (c->hs->in_len > 0) {
		ssize_t n = send(c->cfd, c->hs->in, c->hs->in_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		size_t sent = n > 0 ? (size_t)n : 0;

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -ECONNRESET; /* the client is gone (the error is consumed: say so here) */
		if (sent) {
			stats_quota_charge(c->cs, sent);
			count_relayed(c, 0, sent);
			destfail_ok(&c->w->sh->destfail, c->map.proxy_id); /* the far side answered */
		}
		if (sent < c->hs->in_len) {
			if (pipe_get(c->w, c->pipe_down) < 0)
				return -EMFILE; /* closed with a reset when some went (conn_close) */
			n = write(c->pipe_down[1], c->hs->in + sent, c->hs->in_len - sent);
			if (n != (ssize_t)(c->hs->in_len - sent)) {
				c->in_down = n > 0 ? (size_t)n : 0; /* a pipe holding them is not reused */
				return -EIO;
			}
			stats_quota_charge(c->cs, (size_t)n); /* as pump() takes it: at the read */
			c->in_down = (size_t)n;
		}
	}
	if (c->early_len) { /* the client's first bytes went with the request: they count as relayed */
		c->sent_early = 1;
		atomic_fetch_add(&c->w->sh->stats.early_data, 1);
		count_relayed(c, c->early_len, 0);
	}
	if (c->bytes_up || c->bytes_down)
		conn_publish(c);
	free(c->early);
	c->early = NULL;
	c->early_len = 0;
	drained_u = c->hs->drained;
	upstream_hs_wipe(c->hs);
	free(c->hs);
	c->hs = NULL;
	c->relaying = 1;
	/* edges seen during the handshake were not used: try all, but a client drained since */
	c->wr_c = c->wr_u = 1;
	c->rd_c = !c->hs_drained_c;
	c->rd_u = !drained_u || c->hs_end_u;
	__atomic_store_n(&c->pub.relaying, 1, __ATOMIC_RELAXED);
	c->t_active = c->t_relay = ev_now_ms();
	/* both sockets are watched EV_ALL since they were added: the caller pumps both ways now */
	return 0;
}

static void on_upstream(struct evloop *ev, int fd, uint32_t events, void *arg);

/* A connection of its own to the proxy, handshake from the start (the client's first bytes, if
 * read already, go with the request). Closes c on failure. */
static void upstream_open(struct conn *c)
{
	struct worker *w = c->w;
	struct upstream_target t;
	int one = 1, nofd = 0;

	/* out of descriptors, the pool's idle pipes beyond the reserve make way */
	while ((c->ufd = socket(c->map.proxy.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 &&
	       (nofd = errno == EMFILE || errno == ENFILE) && pipe_trim(w))
		;
	c->hs_end_u = 0; /* a new socket (reopen: the ready session's ended) */
	if (!c->hs)
		c->hs = calloc(1, sizeof(*c->hs));
	if (c->ufd < 0 || !c->hs) {
		w->fd_refused += (unsigned long)nofd; /* the tick says so with the refused at accept */
		conn_close(c, nofd ? CLOSE_NO_DESCRIPTORS : CLOSE_INTERNAL, UP_OK);
		return;
	}
	/* small handshake messages and the first request go out at once */
	setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&t, 0, sizeof(t));
	memcpy(&t.addr, &c->dst, sizeof(c->dst));
	upstream_hs_init(c->hs, c->map.type, &t, c->map.user, c->map.pass);
	c->hs->pipeline = c->map.pipeline;
	c->hs->early = c->early;
	c->hs->early_len = c->early_len;
	if (connect(c->ufd, (struct sockaddr *)&c->map.proxy, net_sa_len(&c->map.proxy)) < 0 && errno != EINPROGRESS) {
		enum upstream_result r = errno == ECONNREFUSED ? UP_ERR_CONNECT_REFUSED : UP_ERR_CONNECT;
		report_failure(w, c->map.proxy_id, upstream_result_str(r));
		conn_close(c, CLOSE_UPSTREAM, r);
		return;
	}
	c->uh = ev_add_fd(w->ev, c->ufd, EV_ALL, on_upstream, c);
	if (!c->uh)
		conn_close(c, CLOSE_INTERNAL, UP_OK);
}

/* The ready session is gone (closed by the proxy before our request reached it): drop it and
 * open a connection of its own, once. */
static void reopen(struct conn *c)
{
	unwait(c);
	atomic_fetch_add(&c->w->sh->stats.sess_stale, 1);
	ev_forget(c->w->ev, c->uh);
	c->uh = NULL;
	close(c->ufd);
	c->ufd = -1;
	c->from_pool = 0;
	upstream_open(c);
}

/* A ready session failed (r) before any reply byte: was it gone before the request reached the
 * proxy, so that nothing of the client's can have been passed on? Yes when none of the client's
 * bytes went out (a close, or TCP_USER_TIMEOUT's ETIMEDOUT), or when the close came back sooner
 * than a round trip after the request left (the proxy's FIN was already on its way). Otherwise
 * it is the proxy's answer: no second try. */
static int stale(struct conn *c, enum upstream_result r)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (c->hs->early_off == 0 && (r == UP_ERR_CLOSED || (r == UP_ERR_IO && c->hs->detail == ETIMEDOUT)))
		return 1;
	if (r != UP_ERR_CLOSED) /* a timeout with some bytes out: part may have been acknowledged, or */
		return 0;	/* all of them and the ACKs lost: passed on for all we know */
	return getsockopt(c->ufd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_rtt > 0 &&
	       ev_now_us() - c->t_req_us < ti.tcpi_rtt;
}

/* A ready session: send the request (with the client's first bytes, if any came). */
static void resume(struct conn *c)
{
	struct upstream_target t;

	unwait(c);
	c->t_req_us = ev_now_us();
	memset(&t, 0, sizeof(t));
	memcpy(&t.addr, &c->dst, sizeof(c->dst));
	if (upstream_hs_resume(c->hs, &t, c->early, c->early_len) < 0) {
		reopen(c); /* the proxy sent something while it waited: not a clean session */
		return;
	}
	on_upstream(c->w->ev, c->ufd, 0, c);
}

/* The client's first bytes (once, while the request has not gone yet), on an edge with events.
 * A ready session waiting for them goes on at once. */
static void early_read(struct conn *c, uint32_t events)
{
	size_t room, held;
	ssize_t n;

	c->want_early = 0;
	if (c->hs->out_early) /* the request went already: the bytes wait in the socket for the relay */
		return;
	room = stats_quota_take(c->cs, EARLY_MAX, &held);
	if (room > 0) { /* read into the worker's scratch, kept in a buffer of its size */
		n = recv(c->cfd, c->w->early_buf, room, 0);
		if (n > 0 && !(c->early = malloc((size_t)n)))
			n = -2; /* no memory: the bytes are lost with the connection */
		stats_quota_done(c->cs, held, n > 0 ? room - (size_t)n : room);
		if (n == -2 || (n < 0 && errno != EAGAIN)) {
			conn_close(c, n == -2 ? CLOSE_INTERNAL : CLOSE_CLIENT_RESET, UP_OK);
			return;
		}
		if (n == 0)
			c->eof_c = 1; /* it sent everything it will (a half-close): the relay passes it on */
		else if (((n > 0 && (size_t)n < room) || n < 0) && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			c->hs_drained_c = 1; /* bytes that come later come with an edge (on_client); an end
					      * that came with these is still to be read */
		if (n > 0) {
			memcpy(c->early, c->w->early_buf, (size_t)n);
			c->early_len = (size_t)n;
			c->hs->early = c->early;
			c->hs->early_len = c->early_len;
		}
	}
	if (c->from_pool && upstream_hs_parked(c->hs))
		resume(c);
}

void relay_on_early_timer(struct evloop *ev, void *arg)
{
	struct worker *w = arg;
	uint64_t now = ev_now_ms();

	(void)ev;
	w->early_armed = 0;
	while (w->wait_head && w->wait_head->early_until <= now) {
		struct conn *c = w->wait_head;
		c->want_early = 0; /* none came: the request goes alone (the bytes, when they come, relay) */
		resume(c);
	}
	if (w->wait_head && ev_timer_set(w->early_timer, w->wait_head->early_until - now, 0) == 0)
		w->early_armed = 1;
}

static void on_upstream(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	enum upstream_result r;
	uint32_t want = 0;
	int rc;

	(void)ev, (void)fd;
	if (c->relaying) {
		relay_io(c, 1, events);
		return;
	}
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hs_end_u = 1;
	if (upstream_hs_parked(c->hs)) { /* a ready session, still waiting for the client's first bytes */
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) /* ... ended (or spoke: not clean) */
			reopen(c);
		return;
	}
	r = upstream_hs_step(c->hs, c->ufd, &want);
	if (r == UP_IN_PROGRESS) /* it read or wrote until EAGAIN: the next edge brings it back */
		return;
	if (c->from_pool && c->hs->in_len == 0 && stale(c, r)) {
		/* a ready session that was gone before the request reached the proxy: the connection opens
		 * its own (once), with the same bytes */
		reopen(c);
		return;
	}
	if (r != UP_OK) {
		if (upstream_dest_refusal(c->hs, r)) {
			dest_failure(c, destfail_kind(c->hs));
		} else {
			char why[96];
			upstream_reason(c->hs, r, why, sizeof(why));
			report_failure(c->w, c->map.proxy_id, why);
		}
		conn_close(c, CLOSE_UPSTREAM, r);
		return;
	}
	if ((rc = start_relay(c)) < 0) {
		conn_close(c,
			   rc == -EMFILE       ? CLOSE_NO_DESCRIPTORS
			   : rc == -ECONNRESET ? CLOSE_CLIENT_RESET
					       : CLOSE_INTERNAL,
			   UP_OK);
		return;
	}
	relay_io(c, 1, 0);
}

static void on_client(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	(void)ev, (void)fd;
	if (c->relaying) {
		relay_io(c, 0, events);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hs_drained_c = 0;
	if ((events & EPOLLIN) && c->want_early)
		early_read(c, events);
	else if (events & (EPOLLHUP | EPOLLERR)) /* the client gave up during the handshake */
		conn_close(c, CLOSE_CLIENT_RESET, UP_OK);
}

/* REDIRECT: the destination before NAT; TPROXY: the socket's own (remote) address. */
static int original_dst(int cfd, int family, int transparent, struct sockaddr_storage *dst)
{
	socklen_t len = sizeof(*dst);

	if (transparent)
		return getsockname(cfd, (struct sockaddr *)dst, &len);
	if (family == AF_INET6)
		return getsockopt(cfd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &len);
	return getsockopt(cfd, SOL_IP, SO_ORIGINAL_DST, dst, &len);
}

static void accept_one(struct worker *w, int cfd, const struct sockaddr_storage *peer, int transparent)
{
	struct fwd_shared *sh = w->sh;
	struct conn *c = calloc(1, sizeof(*c));
	const struct fwd_entry *e;
	struct net_ip client;
	enum fwd_close why = CLOSE_INTERNAL;
	unsigned limits_max, limits_rate;
	int max;

	atomic_fetch_add(&sh->stats.accepted, 1);
	atomic_fetch_add(&sh->stats.active, 1);
	if (!c) {
		close(cfd);
		atomic_fetch_sub(&sh->stats.active, 1);
		return;
	}
	c->w = w;
	c->id = atomic_fetch_add(&sh->next_conn_id, 1) + 1;
	c->cfd = cfd;
	c->ufd = -1;
	c->pipe_up[0] = c->pipe_up[1] = c->pipe_down[0] = c->pipe_down[1] = -1;
	c->client = *peer;
	c->t_start = c->tick_ms = ev_now_ms();
	pthread_mutex_lock(&w->list_lock);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	pthread_mutex_unlock(&w->list_lock);

	if (original_dst(cfd, peer->ss_family, transparent, &c->dst) < 0 || net_ip_from_sa(peer, &client) < 0) {
		why = CLOSE_NO_ORIGINAL_DST;
		goto refuse;
	}
	pthread_rwlock_rdlock(&sh->lock);
	max = (int)sh->limits.max_connections;
	limits_max = sh->limits.client_max_conns;
	limits_rate = sh->limits.client_conns_per_s;
	e = table_lookup(sh->table, &client);
	if (e)
		c->map = *e; /* a copy: a reload never touches an open connection */
	c->deadline = c->t_start + sh->limits.connect_timeout_ms;
	pthread_rwlock_unlock(&sh->lock);
	if (!e) {
		why = CLOSE_UNKNOWN_CLIENT;
		goto refuse;
	}
	if (c->map.state != FWD_ACTIVE) {
		why = CLOSE_BLOCKED_CLIENT;
		goto refuse;
	}
	if ((int)atomic_load(&sh->stats.active) > max) {
		why = CLOSE_MAX_CONNECTIONS;
		goto refuse;
	}
	/* the client's own limits: one device cannot take every slot (counted as open if allowed) */
	why = (enum fwd_close)stats_client_open(
	    &sh->stats, &client, c->map.org_id, c->map.max_conns ? c->map.max_conns : limits_max,
	    c->map.conns_per_s ? c->map.conns_per_s : limits_rate, c->t_start, &c->cs);
	if (why != CLOSE_DONE)
		goto refuse;
	why = CLOSE_INTERNAL;
	c->counted = 1;
	atomic_store(&c->listed, 1); /* its client, destination and map are set: the control socket shows it */
	/* TCP_NODELAY and SO_KEEPALIVE: from the listening socket (workers.c) */
	/* the client's first bytes, for a proxy that takes them with the request: an edge, read once */
	c->want_early = c->map.early;
	c->ch = ev_add_fd(w->ev, cfd, EV_ALL, on_client, c);
	if (!c->ch)
		goto refuse;
	if (pool_take(w, &c->map, c->t_start, &c->ufd, &c->hs, &c->uh) == 1) {
		c->from_pool = 1;
		c->hs->user = c->map.user; /* the same credentials (the path says so): the pool's copy may go */
		c->hs->pass = c->map.pass;
		ev_set_cb(c->uh, on_upstream, c);
		if (!c->want_early) {
			resume(c);
			return;
		}
		/* wait a moment for the client to speak: its request then reaches the destination with ours */
		c->early_until = c->t_start + EARLY_WAIT_MS;
		c->wprev = w->wait_tail;
		if (w->wait_tail)
			w->wait_tail->wnext = c;
		else
			w->wait_head = c;
		w->wait_tail = c;
		if (!w->early_armed && ev_timer_set(w->early_timer, EARLY_WAIT_MS, 0) == 0)
			w->early_armed = 1;
		return;
	}
	upstream_open(c);
	return;
refuse:
	conn_close(c, why, UP_OK);
}

/* The worker's listeners on (EPOLLIN) or off (0: out of descriptors, until the tick). */
static void listening(struct worker *w, uint32_t events)
{
	for (int l = 0; l < L_MAX; l++)
		if (w->lh[l])
			ev_mod_fd(w->ev, w->lh[l], events);
	w->accept_paused = !events;
}

/* A connection accepted only to be closed at once: no descriptor for it (the tick says how many). */
static void refuse_no_fd(struct worker *w, int cfd)
{
	close(cfd);
	atomic_fetch_add(&w->sh->stats.accepted, 1);
	atomic_fetch_add(&w->sh->stats.closes[CLOSE_NO_DESCRIPTORS], 1);
	w->fd_refused++;
}

void relay_on_accept(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	int transparent = fd == w->lfd[L_TPROXY4] || fd == w->lfd[L_TPROXY6];

	(void)ev, (void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0 && (errno == EMFILE || errno == ENFILE)) {
			int e;

			/* out of descriptors: the connection waiting would keep this level-triggered
			 * listener ready (a busy loop) and its client would hang. Let the spare go, take
			 * the connection, close it (refused at once: the client may try again, most
			 * likely on another worker), and take the spare back. Without a spare (another
			 * thread or process took the slot: a shared table, ENFILE), stop listening until
			 * the next tick. The tick says how many were refused. */
			if (w->spare_fd >= 0) {
				close(w->spare_fd);
				len = sizeof(peer);
				cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
				e = errno;
				if (cfd >= 0)
					refuse_no_fd(w, cfd);
				w->spare_fd = eventfd(0, EFD_CLOEXEC);
				if (cfd >= 0 && w->spare_fd >= 0)
					continue;
				if (cfd < 0 && e != EMFILE && e != ENFILE)
					return; /* the queue is empty */
			}
			if (w->spare_fd < 0 && (w->spare_fd = eventfd(0, EFD_CLOEXEC)) < 0)
				listening(w, 0);
			return;
		}
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		if (w->n_pipes < PIPE_RESERVE && pipe_reserve(w) < 0) {
			refuse_no_fd(w, cfd); /* the pipes the established connections need come first */
			continue;
		}
		accept_one(w, cfd, &peer, transparent);
	}
}

/* A pipe came back (or descriptors): those waiting for one try again, oldest first; one that
 * finds none goes back to the end of the line. */
void relay_on_pipe_timer(struct evloop *ev, void *arg)
{
	struct worker *w = arg;
	struct conn *c, *last = TAILQ_LAST(&w->pipe_line, conn_line);
	unsigned long waits = w->pipe_waits; /* a retry that finds none again is no new wait */
	int done = !last;

	(void)ev;
	w->pipe_armed = 0;
	while (!done && (c = TAILQ_FIRST(&w->pipe_line))) {
		done = c == last; /* (before relay_io, which may close it) */
		pipe_unwait(c);
		relay_io(c, 0, 0);
	}
	w->pipe_waits = waits;
}

/* Once a second: deadlines and the end of a drain. */
void relay_on_tick(struct evloop *ev, void *arg)
{
	struct worker *w = arg;
	uint64_t now = ev_now_ms(), idle, connect_ms;
	struct conn *c, *next;

	atomic_store(&w->last_tick, now);
	/* first: the descriptors it frees are there for the pipe line and the listeners below. A
	 * drain's end, or descriptors short, ends the waits at once */
	relay_resets_due(w, now, (w->draining && now >= w->drain_until) || w->accept_paused);
	if (w->fd_refused != w->fd_refused_said) {
		log_warnx("worker %u: out of descriptors with %u connections: %lu refused (no_descriptors) since the "
			  "last tick, %lu in all (PGW_FORWARDER_WORKERS, LimitNOFILE)",
			  w->index, w->n_conns, w->fd_refused - w->fd_refused_said, w->fd_refused);
		w->fd_refused_said = w->fd_refused;
	}
	if (w->pipe_waits != w->pipe_waits_said) {
		unsigned waiting = 0;
		for (c = TAILQ_FIRST(&w->pipe_line); c; c = TAILQ_NEXT(c, pw))
			waiting++;
		log_warnx(
		    "worker %u: out of descriptors with %u connections: %lu had to wait for a pipe since the last "
		    "tick (bytes held back, not lost), %u waiting now (PGW_FORWARDER_WORKERS, LimitNOFILE)",
		    w->index, w->n_conns, w->pipe_waits - w->pipe_waits_said, waiting);
		w->pipe_waits_said = w->pipe_waits;
	}
	pipe_line_wake(w);	/* however it came to wait, at least once a second */
	if (w->accept_paused) { /* no spare: listening again, and a spare if one can be had */
		if (w->spare_fd < 0)
			w->spare_fd = eventfd(0, EFD_CLOEXEC);
		listening(w, EPOLLIN);
	}
	pthread_rwlock_rdlock(&w->sh->lock);
	idle = w->sh->limits.idle_timeout_ms;
	connect_ms = w->sh->limits.connect_timeout_ms;
	pthread_rwlock_unlock(&w->sh->lock);
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->relaying && now > c->tick_ms) { /* the current rate, bytes/s since the last tick */
			uint64_t dt = now - c->tick_ms;
			__atomic_store_n(&c->pub.rate_up, (c->bytes_up - c->tick_up) * 1000 / dt, __ATOMIC_RELAXED);
			__atomic_store_n(&c->pub.rate_down, (c->bytes_down - c->tick_down) * 1000 / dt,
					 __ATOMIC_RELAXED);
			c->tick_up = c->bytes_up;
			c->tick_down = c->bytes_down;
			c->tick_ms = now;
		}
		if (!c->relaying && now >= c->deadline) {
			report_failure(w, c->map.proxy_id, upstream_result_str(UP_ERR_TIMEOUT));
			conn_close(c, CLOSE_HANDSHAKE_TIMEOUT, UP_ERR_TIMEOUT);
		} else if (c->relaying && now - c->t_active >= idle && !waiting_empty(c)) {
			conn_close(c, CLOSE_IDLE_TIMEOUT, UP_OK);
		} else if (w->draining && now >= w->drain_until) {
			conn_close(c, CLOSE_SHUTDOWN, UP_OK);
		} else if (c->relaying && c->quota_wait) {
			c->quota_wait = 0;
			relay_io(c, 0, 0); /* may close it */
		}
	}
	pool_tick(w, now, connect_ms);
	if (w->draining && !w->conns && !w->n_resets)
		ev_stop(ev);
}

void relay_on_revoke(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	struct conn *c, *next;
	uint64_t v;

	(void)ev, (void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* eventfd: nothing to do */
	}
	pthread_rwlock_rdlock(&w->sh->lock); /* judged under the lock, closed after it */
	for (c = w->conns; c; c = c->next) {
		struct net_ip ip;
		/* refused at accept (not counted) are closing anyway */
		c->revoked = c->counted && net_ip_from_sa(&c->client, &ip) == 0 &&
			     !table_same_path(table_lookup(w->sh->table, &ip), &c->map);
	}
	pool_revalidate(w, w->sh->table);
	resets_of_gone(w);
	pthread_rwlock_unlock(&w->sh->lock);
	relay_resets_due(w, ev_now_ms(), 0);
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (atomic_load(&c->kill))
			conn_close(c, CLOSE_ADMIN, UP_OK);
		else if (c->revoked)
			conn_close(c, CLOSE_REVOKED, UP_OK);
	}
}
