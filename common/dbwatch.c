/* dbwatch.c - see dbwatch.h. */
#include "dbwatch.h"

#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_MAX 1024

struct dbwatch {
	struct evloop *ev;
	struct ev_handle *timer;
	sqlite3 *db;
	int64_t seen;
	const char *fp_sql;
	char fp[FP_MAX];
	unsigned long hits;
	dbwatch_cb cb;
	void *arg;
};

/* The fingerprint as text (whatever the query's one value is); "" when it cannot be read. */
static void fingerprint(struct dbwatch *w, char *out)
{
	sqlite3_stmt *st = NULL;

	out[0] = 0;
	if (sqlite3_prepare_v2(w->db, w->fp_sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		if (t)
			snprintf(out, FP_MAX, "%s", (const char *)t);
	} else {
		log_warnx("dbwatch: fingerprint: %s", sqlite3_errmsg(w->db));
	}
	sqlite3_finalize(st);
}

/* With a fingerprint, it is read on every tick: it may depend on the time (a health result
 * that goes stale changes it with no commit at all). Without one, data_version decides. */
static void on_tick(struct evloop *ev, void *arg)
{
	struct dbwatch *w = arg;
	char fp[FP_MAX];
	int64_t v;

	(void)ev;
	if (db_data_version(w->db, &v) < 0) {
		log_warnx("dbwatch: cannot read data_version: %s", sqlite3_errmsg(w->db));
		return;
	}
	if (!w->fp_sql) {
		if (v == w->seen)
			return;
		w->seen = v;
	} else {
		w->seen = v;
		fingerprint(w, fp);
		if (strcmp(fp, w->fp) == 0)
			return; /* nothing this daemon watches changed */
		memcpy(w->fp, fp, sizeof(fp));
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
		fingerprint(w, w->fp);
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
		fingerprint(w, w->fp);
}

unsigned long dbwatch_hits(const struct dbwatch *w) { return w->hits; }
