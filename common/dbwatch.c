/* dbwatch.c - see dbwatch.h. */
#include "dbwatch.h"

#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dbwatch {
	struct evloop *ev;
	struct ev_handle *timer;
	sqlite3 *db;
	int64_t seen;
	const char *fp_sql;
	char *fp; /* the last fingerprint, whole (a list of stale proxies can be long) */
	unsigned long hits;
	int unreadable; /* data_version did not read at the last poll */
	dbwatch_cb cb;
	void *arg;
};

/* The fingerprint as text (whatever the query's one value is), malloc'd; "" when it cannot be
 * read; NULL only when out of memory. */
static char *fingerprint(struct dbwatch *w)
{
	sqlite3_stmt *st = NULL;
	const char *t = "";

	if (sqlite3_prepare_v2(w->db, w->fp_sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_text(st, 0))
			t = (const char *)sqlite3_column_text(st, 0);
	} else {
		log_warnx("dbwatch: fingerprint: %s", sqlite3_errmsg(w->db));
	}
	char *copy = strdup(t);
	sqlite3_finalize(st);
	return copy;
}

/* Replace the stored fingerprint; 1 when it changed. */
static int fingerprint_moved(struct dbwatch *w)
{
	char *fp = fingerprint(w);
	int moved;

	if (!fp)
		return 1; /* out of memory: better a reload too many */
	moved = !w->fp || strcmp(fp, w->fp) != 0;
	free(w->fp);
	w->fp = fp;
	return moved;
}

/* With a fingerprint, it is read on every tick: it may depend on the time (a health result
 * that goes stale changes it with no commit at all). Without one, data_version decides. */
static void on_tick(struct evloop *ev, void *arg)
{
	struct dbwatch *w = arg;
	int64_t v;
	int changed = 0;

	(void)ev;
	if (db_data_version(w->db, &v) < 0) {
		/* the DB does not read (locked, failing storage, corrupt): whatever it says now is not
		 * known, which is a change for the daemon (once: its reload fails, and its own retry
		 * takes over; the agent and the forwarder block when undecided for 5 s) */
		if (!w->unreadable) {
			log_warnx("dbwatch: cannot read data_version: %s (told as a change)", sqlite3_errmsg(w->db));
			w->unreadable = 1;
			w->hits++;
			w->cb(w->arg);
		}
		return;
	}
	if (w->unreadable) { /* it reads again: whatever changed meanwhile, told as a change */
		log_info("dbwatch: the database reads again");
		w->unreadable = 0;
		changed = 1;
	}
	if (w->fp_sql)
		changed |= fingerprint_moved(w); /* (always read: it is kept for the next poll) */
	else
		changed |= v != w->seen;
	w->seen = v;
	if (!changed)
		return; /* nothing this daemon watches changed */
	w->hits++;
	w->cb(w->arg);
}

struct dbwatch *dbwatch_new(struct evloop *ev, sqlite3 *db, uint64_t poll_ms, const char *fingerprint_sql,
			    dbwatch_cb cb, void *arg)
{
	struct dbwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->ev = ev;
	w->db = db;
	w->cb = cb;
	w->arg = arg;
	w->fp_sql = fingerprint_sql;
	if (fingerprint_sql)
		w->fp = fingerprint(w);
	if (db_data_version(db, &w->seen) < 0)
		goto fail;
	w->timer = ev_add_timer(ev, poll_ms, poll_ms, on_tick, w);
	if (!w->timer)
		goto fail;
	return w;
fail:
	free(w->fp);
	free(w);
	return NULL;
}

void dbwatch_free(struct dbwatch *w)
{
	if (!w)
		return;
	ev_del(w->ev, w->timer);
	free(w->fp);
	free(w);
}

void dbwatch_sync(struct dbwatch *w)
{
	db_data_version(w->db, &w->seen);
	if (w->fp_sql)
		fingerprint_moved(w);
}

unsigned long dbwatch_hits(const struct dbwatch *w)
{
	return w->hits;
}
