/* dbwatch.c - see dbwatch.h. */
#include "dbwatch.h"

#include "db.h"
#include "log.h"

#include <stdlib.h>

struct dbwatch {
	struct evloop *ev;
	struct ev_handle *timer;
	sqlite3 *db;
	int64_t seen;
	const char *fp_sql;
	long long fp;
	unsigned long hits;
	dbwatch_cb cb;
	void *arg;
};

static void on_tick(struct evloop *ev, void *arg)
{
	struct dbwatch *w = arg;
	int64_t v;

	(void)ev;
	if (db_data_version(w->db, &v) < 0) {
		log_warnx("dbwatch: cannot read data_version: %s", sqlite3_errmsg(w->db));
		return;
	}
	if (v == w->seen)
		return;
	w->seen = v;
	if (w->fp_sql) {
		long long fp = db_query_int(w->db, w->fp_sql, -1);
		if (fp == w->fp)
			return; /* a commit, but not to anything this daemon watches */
		w->fp = fp;
	}
	w->hits++;
	w->cb(w->arg);
}

struct dbwatch *dbwatch_new(struct evloop *ev, sqlite3 *db, uint64_t poll_ms, const char *fingerprint_sql, dbwatch_cb cb,
			    void *arg)
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
		w->fp = db_query_int(db, fingerprint_sql, -1);
	if (db_data_version(db, &w->seen) < 0)
		goto fail;
	w->timer = ev_add_timer(ev, poll_ms, poll_ms, on_tick, w);
	if (!w->timer)
		goto fail;
	return w;
fail:
	free(w);
	return NULL;
}

void dbwatch_free(struct dbwatch *w)
{
	if (!w)
		return;
	ev_del(w->ev, w->timer);
	free(w);
}

void dbwatch_sync(struct dbwatch *w)
{
	db_data_version(w->db, &w->seen);
	if (w->fp_sql)
		w->fp = db_query_int(w->db, w->fp_sql, -1);
}

unsigned long dbwatch_hits(const struct dbwatch *w) { return w->hits; }
