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
	struct ev_handle *retry; /* a reload that failed (a busy DB): again in a second */
} N;

static void reload_now(struct evloop *ev, void *unused)
{
	(void)ev, (void)unused;
	if (!N.dirty)
		return;
	N.dirty = 0;
	if (N.changed(N.arg) == 0)
		return;
	N.dirty = 1; /* not lost: the answers are kept, the table did not take them yet */
	if (N.retry)
		ev_timer_set(N.retry, 1000, 0);
	else
		N.retry = ev_add_timer(N.ev, 1000, 0, reload_now, NULL);
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
	if (!e->asked_ms || ev_now_ms() - e->asked_ms >= NAMES_REFRESH_MS) {
		if (hostres_ask(host, port) == 0)
			e->asked_ms = ev_now_ms() | 1;
		else
			log_warnx("proxy host '%s': the resolver's queue is full; asked again at the next reload",
				  host);
	}
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
