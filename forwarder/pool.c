/* pool.c - see pool.h. Everything here runs on its worker's thread: no locks but the stats'
 * atomics. */
#include "pool.h"

#include "log.h"
#include "net.h"
#include "worker.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pool_sess {
	struct pool_sess *prev, *next;
	struct pool *p;
	int fd;
	struct ev_handle *h;
	struct upstream_hs *hs;
	uint64_t t_open, t_ready; /* t_ready 0: still opening */
};

struct pool {
	struct pool *next;
	struct worker *w;
	uint64_t path;
	int64_t proxy_id, org_id;
	enum upstream_type type;
	int pipeline;
	struct sockaddr_storage addr;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1]; /* what its sessions' handshakes use */
	struct pool_sess *sess;					       /* a ready one moves to the front */
	unsigned n_ready, n_opening;
	uint64_t last_use, win_start, backoff_until;
	unsigned win_count;
	unsigned rate;		      /* client connections a second (smoothed) */
	uint64_t open_ms;	      /* time to make a session ready (smoothed) */
	uint64_t idle_ms;	      /* unused sessions are retired after this */
	uint64_t off_until, young_at; /* none kept until then (the proxy ends them young); the last young end */
	uint64_t lesson_at;	      /* when idle_ms was last cut */
	unsigned young;		      /* young ends, in different seconds */
	unsigned fails;		      /* sessions that failed to open in a row: the backoff doubles */
	int seen;		      /* pool_revalidate */
};

static struct fwd_stats *stats_of(struct pool *p)
{
	return &p->w->sh->stats;
}

static void unlink_sess(struct pool_sess *s)
{
	struct pool *p = s->p;

	if (s->prev)
		s->prev->next = s->next;
	else
		p->sess = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	if (s->t_ready) {
		p->n_ready--;
		atomic_fetch_sub(&stats_of(p)->sess_ready, 1);
	} else {
		p->n_opening--;
	}
}

static void push_front(struct pool *p, struct pool_sess *s)
{
	s->prev = NULL;
	s->next = p->sess;
	if (p->sess)
		p->sess->prev = s;
	p->sess = s;
}

static void close_sess(struct pool_sess *s)
{
	struct worker *w = s->p->w;

	unlink_sess(s);
	ev_forget(w->ev, s->h); /* closed right below */
	if (s->fd >= 0) {
		close(s->fd);
		pipe_line_wake(w); /* a connection waiting for a pipe may make one now */
	}
	if (s->hs) {
		upstream_hs_wipe(s->hs);
		free(s->hs);
	}
	free(s);
}

static void top_up(struct pool *p, uint64_t now);

/* The session failed to open: none for a while (the client connections go the usual way). */
static void open_failed(struct pool_sess *s, const char *why)
{
	struct pool *p = s->p;
	uint64_t now = ev_now_ms();

	uint64_t wait = (uint64_t)POOL_BACKOFF_MS << (p->fails < 4 ? p->fails : 4); /* 5 s, doubling to 80 s */

	atomic_fetch_add(&stats_of(p)->sess_failed, 1);
	if (now >= p->backoff_until) {
		log_info("proxy %lld: a session kept ready failed to open (%s): none for %llu s",
			 (long long)p->proxy_id, why, (unsigned long long)wait / 1000);
		p->fails++;
		p->backoff_until = now + wait;
	}
	close_sess(s);
}

/* The proxy ended a ready session (or sent bytes nobody asked for): learn its timeout. A restart
 * of the proxy ends them all at once, whatever their age: what it teaches is undone as retired
 * sessions prove the proxy keeps them longer (pool_tick), and the pool goes off only when young
 * sessions end in POOL_YOUNG_OFF different seconds, for POOL_OFF_MS. */
static void closed_by_proxy(struct pool_sess *s, uint64_t now)
{
	struct pool *p = s->p;
	uint64_t age = now - s->t_ready;

	atomic_fetch_add(&stats_of(p)->sess_closed, 1);
	close_sess(s);
	if (age < POOL_IDLE_MIN_MS) {
		if (now - p->young_at > POOL_KEEP_MS) /* counted within a few minutes of each other only */
			p->young = 0;
		if (now - p->young_at >= 1000) {
			p->young_at = now;
			p->young++;
		}
		if (p->young >= POOL_YOUNG_OFF && !p->off_until) {
			log_info("proxy %lld: closes idle sessions within %u ms: none kept ready for it for %u s",
				 (long long)p->proxy_id, POOL_IDLE_MIN_MS, POOL_OFF_MS / 1000);
			p->off_until = now + POOL_OFF_MS;
			while (p->sess)
				close_sess(p->sess);
		}
	} else if (age / 2 < p->idle_ms) {
		p->idle_ms = age / 2 > POOL_IDLE_MIN_MS / 2 ? age / 2 : POOL_IDLE_MIN_MS / 2;
		p->lesson_at = now;
		log_info("proxy %lld: closed an idle session after %llu ms: sessions kept ready retire after %llu ms",
			 (long long)p->proxy_id, (unsigned long long)age, (unsigned long long)p->idle_ms);
	}
	top_up(p, now); /* the pool keeps its size */
}

static void on_sess(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct pool_sess *s = arg;
	struct pool *p = s->p;
	enum upstream_result r;
	uint32_t want = 0;
	uint64_t now;

	(void)fd;
	(void)ev;
	if (s->t_ready) { /* ready sessions wait in silence: anything from the proxy ends them */
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			closed_by_proxy(s, ev_now_ms());
		return;
	}
	r = upstream_hs_step(s->hs, s->fd, &want);
	if (r == UP_IN_PROGRESS) /* until EAGAIN: watched EV_ALL, edge-triggered, the next edge brings it back */
		return;
	/* parked clean, or not at all (a FIN that came with the last reply brings no edge of its own) */
	if (r != UP_OK || !upstream_hs_parked(s->hs) || s->hs->in_len ||
	    (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		char why[96];
		upstream_reason(s->hs,
				r != UP_OK					? r
				: (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? UP_ERR_CLOSED
										: UP_ERR_BAD_REPLY,
				why, sizeof(why));
		open_failed(s, why);
		return;
	}
	now = ev_now_ms();
	p->open_ms = p->open_ms ? (p->open_ms * 3 + (now - s->t_open)) / 4 : now - s->t_open;
	p->fails = 0;
	unlink_sess(s); /* now among the ready ones, at the front */
	s->t_ready = now ? now : 1;
	push_front(p, s);
	p->n_ready++;
	atomic_fetch_add(&stats_of(p)->sess_ready, 1);
}

/* Open one session (connect, then greeting and auth as the handshake goes). */
static int open_sess(struct pool *p, uint64_t now)
{
	struct pool_sess *s = calloc(1, sizeof(*s));
	struct upstream_target none;
	unsigned uto = p->open_ms ? (unsigned)p->open_ms * 3 : POOL_USER_TIMEOUT_MS;
	int one = 1;

	if (!s)
		return -ENOMEM;
	uto = uto < POOL_USER_TIMEOUT_MIN_MS ? POOL_USER_TIMEOUT_MIN_MS
	      : uto > POOL_USER_TIMEOUT_MS   ? POOL_USER_TIMEOUT_MS
					     : uto;
	s->p = p;
	s->t_open = now;
	s->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	s->hs = calloc(1, sizeof(*s->hs));
	if (s->fd < 0 || !s->hs) {
		if (s->fd >= 0)
			close(s->fd);
		free(s->hs);
		free(s);
		return -ENOMEM;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a session that died in silence (a NAT forgot it, the proxy's host went) must not swallow a
	 * request: unacknowledged data errs it out soon (ETIMEDOUT; the connection then opens its own) */
	setsockopt(s->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
	memset(&none, 0, sizeof(none));
	upstream_hs_init(s->hs, p->type, &none, p->user, p->pass);
	s->hs->pipeline = p->pipeline;
	s->hs->park = 1;
	push_front(p, s);
	p->n_opening++;
	if (connect(s->fd, (struct sockaddr *)&p->addr, net_sa_len(&p->addr)) < 0 && errno != EINPROGRESS) {
		open_failed(s, strerror(errno));
		return -1;
	}
	s->h = ev_add_fd(p->w->ev, s->fd, EV_ALL, on_sess, s);
	if (!s->h) {
		open_failed(s, "epoll");
		return -1;
	}
	return 0;
}

/* Sessions to keep: enough for the connections expected while one opens, twice over. The rate
 * is the smoothed one or, when higher, this window's so far (a burst is followed at once). */
static unsigned target(const struct pool *p, uint64_t now)
{
	uint64_t open_ms = p->open_ms > 50 ? p->open_ms : 50, dt = now - p->win_start;
	uint64_t rate = p->rate, cur = dt >= 250 ? p->win_count * 1000 / dt : 0;
	uint64_t n = ((cur > rate ? cur : rate) * open_ms * 2 + 999) / 1000 + 1;

	return n > POOL_MAX ? POOL_MAX : (unsigned)n;
}

static void top_up(struct pool *p, uint64_t now)
{
	if (p->off_until > now || p->w->draining || now < p->backoff_until || now - p->last_use > POOL_KEEP_MS)
		return;
	if (p->off_until) { /* try again */
		p->off_until = 0;
		p->young = 0;
	}
	while (p->n_ready + p->n_opening < target(p, now))
		if (open_sess(p, now) < 0)
			return;
}

/* The pool of e's path: the hash, then every field it stands for (a session authenticated with
 * one set of credentials never serves another). */
static struct pool *find(struct worker *w, const struct fwd_entry *e)
{
	for (struct pool *p = w->pools; p; p = p->next)
		if (p->path == e->path && p->proxy_id == e->proxy_id && p->org_id == e->org_id && p->type == e->type &&
		    memcmp(&p->addr, &e->proxy, sizeof(p->addr)) == 0 && strcmp(p->user, e->user) == 0 &&
		    strcmp(p->pass, e->pass) == 0)
			return p;
	return NULL;
}

static struct pool *pool_new(struct worker *w, const struct fwd_entry *e, uint64_t now)
{
	struct pool *p;

	if (w->n_pools >= POOL_PROXIES_MAX || !(p = calloc(1, sizeof(*p))))
		return NULL;
	p->w = w;
	p->path = e->path;
	p->proxy_id = e->proxy_id;
	p->org_id = e->org_id;
	p->type = e->type;
	p->addr = e->proxy;
	memcpy(p->user, e->user, sizeof(p->user));
	memcpy(p->pass, e->pass, sizeof(p->pass));
	p->idle_ms = POOL_IDLE_MS;
	p->win_start = now;
	p->next = w->pools;
	w->pools = p;
	w->n_pools++;
	return p;
}

static void pool_free(struct worker *w, struct pool *p)
{
	struct pool **pp;

	while (p->sess)
		close_sess(p->sess);
	for (pp = &w->pools; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = p->next;
	w->n_pools--;
	explicit_bzero(p, sizeof(*p));
	free(p);
}

int pool_take(struct worker *w, const struct fwd_entry *e, uint64_t now, int *fd, struct upstream_hs **hs,
	      struct ev_handle **h)
{
	struct pool *p;
	struct pool_sess *s;

	if (!e->preconnect || w->draining)
		return -1;
	p = find(w, e);
	if (!p && !(p = pool_new(w, e, now)))
		return -1;
	p->last_use = now;
	p->win_count++;
	p->pipeline = e->pipeline; /* as healthd knows it now, for the sessions opened from here */
	for (s = p->sess; s && !s->t_ready; s = s->next) /* the newest ready one: furthest from its timeout */
		;
	if (s) {
		unlink_sess(s);
		*fd = s->fd;
		*hs = s->hs;
		*h = s->h;
		free(s);
		atomic_fetch_add(&stats_of(p)->sess_used, 1);
	} else if (p->off_until <= now && now >= p->backoff_until) {
		atomic_fetch_add(&stats_of(p)->sess_missed, 1); /* it keeps sessions, but none was ready */
	}
	top_up(p, now);
	return s != NULL;
}

void pool_tick(struct worker *w, uint64_t now, uint64_t connect_timeout_ms)
{
	struct pool *p, *next;

	for (p = w->pools; p; p = next) {
		struct pool_sess *s, *sn;
		uint64_t dt = now - p->win_start;

		next = p->next;
		if (dt >= 1000) { /* the rate: connections a second, smoothed over a few seconds */
			unsigned r = (unsigned)(p->win_count * 1000 / dt);
			p->rate = (p->rate + r + 1) / 2;
			p->win_count = 0;
			p->win_start = now;
		}
		for (s = p->sess; s; s = sn) {
			sn = s->next;
			if (s->t_ready && now - s->t_ready >= p->idle_ms) {
				/* the proxy kept it this long: a lesson from a restart is undone bit by bit, a
				 * minute after it was learnt (a true timeout is learnt again, once a minute) */
				if (now - p->lesson_at >= POOL_RELEARN_MS)
					p->idle_ms = p->idle_ms + p->idle_ms / 4 < POOL_IDLE_MS
							 ? p->idle_ms + p->idle_ms / 4
							 : POOL_IDLE_MS;
				p->young = 0;
				atomic_fetch_add(&stats_of(p)->sess_retired, 1);
				close_sess(s);
			} else if (!s->t_ready && now - s->t_open >= connect_timeout_ms) {
				open_failed(s, upstream_result_str(UP_ERR_TIMEOUT));
			} else if (now - p->last_use > POOL_KEEP_MS) { /* nobody came for a while: stop keeping */
				if (s->t_ready)
					atomic_fetch_add(&stats_of(p)->sess_retired, 1);
				close_sess(s);
			}
		}
		if (now - p->last_use > POOL_KEEP_MS && !p->sess)
			pool_free(w, p);
		else
			top_up(p, now);
	}
}

struct reval {
	struct worker *w;
};

static void mark_seen(const struct fwd_entry *e, void *arg)
{
	struct reval *rv = arg;
	struct pool *p;

	if (e->state != FWD_ACTIVE || !e->preconnect || !(p = find(rv->w, e)))
		return;
	p->seen = 1;
	p->pipeline = e->pipeline;
}

void pool_revalidate(struct worker *w, const struct fwd_table *t)
{
	struct reval rv = {w};
	struct pool *p, *next;

	if (!w->pools)
		return;
	for (p = w->pools; p; p = p->next)
		p->seen = 0;
	table_foreach(t, mark_seen, &rv);
	for (p = w->pools; p; p = next) {
		next = p->next;
		if (!p->seen)
			pool_free(w, p);
	}
}

void pool_free_all(struct worker *w)
{
	while (w->pools)
		pool_free(w, w->pools);
}
