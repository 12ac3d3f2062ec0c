/* spoof.c - see spoof.h. */
#include "spoof.h"

#include "db.h"
#include "log.h"
#include "net.h"
#include "ruleset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPOOF_LOG_EVERY_MS 60000

struct pair {
	uint8_t mac[6];
	struct net_ip ip;
	uint64_t packets;  /* the kernel's counter as last read */
	uint64_t unlogged; /* packets not yet in a log line */
	int64_t logged_ms; /* 0: never logged */
	int seen;	   /* in the kernel's sets at the last read */
};

struct spoof_log {
	struct pair *p;
	size_t n, cap;
};

struct poll_ctx {
	struct spoof_log *s;
	sqlite3 *db;
	sqlite3_stmt *up;
	const struct bindset *bound;
	int64_t now_ms;
	int in_tx; /* the write transaction begins with the first change */
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct spoof_log *spoof_open(void)
{
	return calloc(1, sizeof(struct spoof_log));
}

void spoof_close(struct spoof_log *s)
{
	if (s)
		free(s->p);
	free(s);
}

void spoof_reset(struct spoof_log *s)
{
	for (size_t i = 0; s && i < s->n; i++)
		s->p[i].packets = 0;
}

static struct pair *find(struct spoof_log *s, const uint8_t mac[6], const struct net_ip *ip)
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->p[i].mac, mac, 6) == 0 && memcmp(&s->p[i].ip, ip, sizeof(*ip)) == 0)
			return &s->p[i];
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct pair *np;
		if (nc > 4 * RULESET_SPOOF_MAX) /* the kernel keeps at most RULESET_SPOOF_MAX per family */
			return NULL;
		np = realloc(s->p, nc * sizeof(*np));
		if (!np)
			return NULL;
		s->p = np;
		s->cap = nc;
	}
	memset(&s->p[s->n], 0, sizeof(s->p[s->n]));
	memcpy(s->p[s->n].mac, mac, 6);
	s->p[s->n].ip = *ip;
	return &s->p[s->n++];
}

static const uint8_t *bound_mac(const struct bindset *b, const struct net_ip *ip)
{
	for (size_t i = 0; b && i < b->n; i++)
		if (memcmp(&b->e[i].addr, ip, sizeof(*ip)) == 0)
			return b->e[i].mac;
	return NULL;
}

static void on_pair(const uint8_t mac[6], const struct net_ip *ip, uint64_t packets, void *arg)
{
	struct poll_ctx *c = arg;
	struct pair *p = find(c->s, mac, ip);
	uint64_t delta;
	char ips[NET_IP_STR_MAX], macs[NET_MAC_STR_MAX], want[NET_MAC_STR_MAX] = "?";
	const uint8_t *bm;

	if (!p)
		return;
	p->seen = 1;
	delta = packets >= p->packets ? packets - p->packets : packets; /* timed out and back: anew */
	if (!c->in_tx && delta)
		c->in_tx = db_begin(c->db) == 0 ? 1 : -1;
	if (c->in_tx < 0 && delta)
		return; /* the DB's write lock held by another process: counted at the next poll */
	p->packets = packets;
	if (!delta)
		return;
	p->unlogged += delta;
	net_ip_str(ip, ips);
	net_mac_str(mac, macs);
	if (c->up && c->in_tx > 0) {
		sqlite3_reset(c->up);
		sqlite3_bind_text(c->up, 1, ips, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(c->up, 2, macs, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(c->up, 3, (sqlite3_int64)delta);
		sqlite3_bind_int64(c->up, 4, c->now_ms / 1000);
		if (sqlite3_step(c->up) != SQLITE_DONE)
			log_warnx("mac_spoof: %s", sqlite3_errmsg(c->db));
	}
	if (p->logged_ms && c->now_ms - p->logged_ms < SPOOF_LOG_EVERY_MS)
		return;
	if ((bm = bound_mac(c->bound, ip)))
		net_mac_str(bm, want);
	log_warnx("mac_mismatch: %s from %s refused (the address is bound to %s): %llu packets dropped%s", ips, macs,
		  want, (unsigned long long)p->unlogged, p->logged_ms ? " since the last line" : "");
	p->unlogged = 0;
	p->logged_ms = c->now_ms;
}

void spoof_poll(struct spoof_log *s, struct nft *n, sqlite3 *db, const struct bindset *bound)
{
	/* only pairs of a client still bound are recorded: the trigger of 0021 clears them with it */
	static const char *const sql =
	    "INSERT INTO main.mac_spoof (client_ip, mac, packets, first_seen, last_seen) SELECT ?1, ?2, ?3, ?4, ?4 "
	    "WHERE EXISTS (SELECT 1 FROM main.mappings WHERE client_ip = ?1 AND mac != '') "
	    "ON CONFLICT (client_ip, mac) DO UPDATE SET packets = packets + excluded.packets, last_seen = "
	    "excluded.last_seen";
	struct poll_ctx c = {s, db, NULL, bound, wall_ms(), 0};
	int r;

	if (!s || !bound || !bound->n)
		return;
	/* the write lock waited for briefly: the agent's loop applies the rules, and the kernel's
	 * counts wait for the next poll */
	db_brief_wait(db, 1);
	if (sqlite3_prepare_v2(db, sql, -1, &c.up, NULL) != SQLITE_OK)
		log_warnx("mac_spoof: %s", sqlite3_errmsg(db));
	for (size_t i = 0; i < s->n; i++)
		s->p[i].seen = 0;
	r = nft_spoof_list(n, on_pair, &c);
	sqlite3_finalize(c.up);
	if (c.in_tx > 0 && db_commit(db) < 0) {
		log_warnx("mac_spoof: %s", sqlite3_errmsg(db));
		db_rollback(db); /* never left holding the write lock */
	}
	db_brief_wait(db, 0);
	if (r == 0) { /* pairs the kernel forgot (timed out): forgotten here too, so the list stays bounded */
		size_t w = 0;
		for (size_t i = 0; i < s->n; i++)
			if (s->p[i].seen)
				s->p[w++] = s->p[i];
		s->n = w;
	}
	if (r < 0)
		log_emit(LOG_LVL_WARN, NULL, -r, "cannot read the MAC binding's refusals");
}
