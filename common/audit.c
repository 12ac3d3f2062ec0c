/* audit.c - see audit.h. */
#include "audit.h"

#include "log.h"
#include "settings.h"

#include <errno.h>

static void bind_opt(sqlite3_stmt *st, int i, const char *s, const char *def)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else if (def)
		sqlite3_bind_text(st, i, def, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int audit_record(sqlite3 *db, const struct audit_entry *e)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(
		db,
		"INSERT INTO main.audit (username, remote_addr, action, object_type, object_id, before_json, "
		"after_json, request_id, result, org_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	bind_opt(st, 1, e->username, "");
	bind_opt(st, 2, e->remote_addr, "");
	bind_opt(st, 3, e->action, NULL);
	bind_opt(st, 4, e->object_type, "");
	bind_opt(st, 5, e->object_id, "");
	bind_opt(st, 6, e->before_json, NULL);
	bind_opt(st, 7, e->after_json, NULL);
	bind_opt(st, 8, e->request_id, "");
	bind_opt(st, 9, e->result, "ok");
	if (e->org_id > 0)
		sqlite3_bind_int64(st, 10, e->org_id);
	else
		sqlite3_bind_null(st, 10);
	if (sqlite3_step(st) == SQLITE_DONE)
		r = 0;
out:
	if (r < 0)
		log_warnx("audit: cannot record %s: %s", e->action ? e->action : "?", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

int audit_prune(sqlite3 *db, int batch, int max_batches, int *more)
{
	unsigned days = settings_uint(db, NULL, "audit_retention_days"); /* (no first value from cfg) */
	sqlite3_stmt *st = NULL;
	int n = 0, step = SQLITE_DONE, full = 0;

	*more = 0;
	if (!days || batch <= 0 || max_batches <= 0)
		return 0;
	if (sqlite3_prepare_v2(
		db,
		"DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < unixepoch() - ?1 * 86400 "
		"LIMIT ?2)",
		-1, &st, NULL) != SQLITE_OK) {
		log_warnx("audit: cannot delete rows past audit_retention_days: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, days);
	sqlite3_bind_int(st, 2, batch);
	for (int i = 0; i < max_batches; i++) {
		sqlite3_reset(st);
		if ((step = sqlite3_step(st)) != SQLITE_DONE)
			break;
		n += sqlite3_changes(db);
		if (!(full = sqlite3_changes(db) == batch))
			break;
	}
	if (step != SQLITE_DONE)
		log_warnx("audit: cannot delete rows past audit_retention_days: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	*more = step == SQLITE_DONE && full;
	if (n > 0)
		log_info("audit: %d rows older than %u days deleted (audit_retention_days)%s", n, days,
			 *more ? "; more next time" : "");
	return step == SQLITE_DONE ? n : -1;
}
