/* names.c - see names.h. */
#include "names.h"

#include "hostres.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name is asked again at a reload at most this often: an answer that differs reloads the
 * table, and a name whose answers rotate (round-robin DNS) must not keep it reloading. */
#define NAMES_REFRESH_MS 60000
#define NAMES_RETRY_MS	 10000 /* ... every 10 s while it does not resolve */
#define NAMES_TICK_MS	 5000  /* and on a timer too, not only at a reload (a quiet gateway) */
#define RELOAD_RETRY_MAX 30000

struct name {
	char host[NET_HOST_MAX + 1];
	uint16_t port;
	int answered, ok, used;
	uint64_t asked_ms; /* 0: never */
	struct sockaddr_storage addr;
};

static struct {
	struct name *v;
	size_t n, cap;
	int (*changed)(void *arg);
	void *arg;
	int dirty; /* an answer differs from the table's: reload (once a batch) */
	struct evloop *ev;
	struct ev_handle *retry, *tick; /* a reload that failed (a busy DB): again 1 s, 2 s ... 30 s later */
	uint64_t retry_ms;
} N;

/* Ask host again when its answer is older than it should be: 1, or 0 when not now. */
static int ask_again(struct name *e, uint64_t now)
{
	if (e->asked_ms && now - e->asked_ms < (e->answered && e->ok ? NAMES_REFRESH_MS : NAMES_RETRY_MS))
		return 0;
	if (hostres_ask(e->host, e->port) < 0) {
		log_warnx("proxy host '%s': the resolver's queue is full; asked again later", e->host);
		return 0;
	}
	e->asked_ms = now | 1;
	return 1;
}

static void reload_now(struct evloop *ev, void *unused)
{
	(void)ev, (void)unused;
	if (!N.dirty)
		return;
	N.dirty = 0;
	if (N.changed(N.arg) == 0) {
		N.retry_ms = 0;
		return;
	}
	N.dirty = 1; /* not lost: the answers are kept, the table did not take them yet */
	N.retry_ms = !N.retry_ms ? 1000 : N.retry_ms * 2 > RELOAD_RETRY_MAX ? RELOAD_RETRY_MAX : N.retry_ms * 2;
	if (N.retry)
		ev_timer_set(N.retry, N.retry_ms, 0);
	else
		N.retry = ev_add_timer(N.ev, N.retry_ms, 0, reload_now, NULL);
}

static void on_tick(struct evloop *ev, void *unused)
{
	uint64_t now = ev_now_ms();

	(void)ev, (void)unused;
	for (size_t i = 0; i < N.n; i++)
		if (N.v[i].asked_ms) /* (a name not asked yet is asked by the load that uses it) */
			ask_again(&N.v[i], now);
}

static struct name *find(const char *host, uint16_t port)
{
	for (size_t i = 0; i < N.n; i++)
		if (N.v[i].port == port && strcmp(N.v[i].host, host) == 0)
			return &N.v[i];
	return NULL;
}

static void on_answer(void *arg, const char *host, uint16_t port, int ok, const struct sockaddr_storage *addr)
{
	struct name *e = host ? find(host, port) : NULL;

	(void)arg;
	if (!host) { /* the end of a batch: one reload for its answers */
		reload_now(N.ev, NULL);
		return;
	}
	if (!e) /* forgotten meanwhile */
		return;
	if (e->answered && e->ok == ok && (!ok || memcmp(&e->addr, addr, sizeof(*addr)) == 0))
		return; /* as before: nothing to reload */
	if (!ok)
		log_warnx("proxy host '%s' does not resolve (any more); its clients are blocked", host);
	e->answered = 1;
	e->ok = ok;
	e->addr = *addr;
	N.dirty = 1;
}

int names_start(struct evloop *ev, int (*changed)(void *arg), void *arg)
{
	N.changed = changed;
	N.arg = arg;
	N.ev = ev;
	if (!(N.tick = ev_add_timer(ev, NAMES_TICK_MS, NAMES_TICK_MS, on_tick, NULL)))
		return -ENOMEM;
	return hostres_start(ev, on_answer, NULL);
}

int names_get(const char *host, uint16_t port, struct sockaddr_storage *addr)
{
	struct net_ip ip;
	struct name *e;

	if (net_ip_parse(host, &ip) == 0) {
		net_ip_to_sa(&ip, port, addr);
		return 1;
	}
	memset(addr, 0, sizeof(*addr));
	if (strchr(host, ':') || strlen(host) > NET_HOST_MAX)
		return 0;
	if (!(e = find(host, port))) {
		if (N.n == N.cap) {
			size_t nc = N.cap ? N.cap * 2 : 16;
			struct name *p = realloc(N.v, nc * sizeof(*p));
			if (!p)
				return -EAGAIN; /* (blocked until memory allows) */
			N.v = p;
			N.cap = nc;
		}
		e = &N.v[N.n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->host, sizeof(e->host), "%s", host);
		e->port = port;
	}
	e->used = 1;
	ask_again(e, ev_now_ms());
	if (!e->answered)
		return -EAGAIN;
	*addr = e->addr;
	return e->ok;
}

void names_sweep(void)
{
	for (size_t i = 0; i < N.n;)
		if (!N.v[i].used)
			N.v[i] = N.v[--N.n];
		else
			N.v[i++].used = 0;
}
