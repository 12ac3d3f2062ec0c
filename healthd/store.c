/* store.c - see store.h. */
#include "store.h"

#include "db.h"
#include "log.h"

#include <errno.h>

/* How long a result may be trusted: the next one is due within an interval plus the three
 * steps' timeouts; one interval more for slack. Past it the proxy counts as unknown (blocked),
 * so a stopped or wedged healthd fails closed (migration 0008). */
static unsigned health_fresh_s(const struct healthd *h)
{
	return (2 * h->interval_ms + 3 * h->timeout_ms + 999) / 1000;
}

int store_result(struct healthd *h, const struct target *t, const struct probe_result *r, time_t at)
{
	static const char *const up_sql =
	    "UPDATE proxy_health SET status = ?2, latency_ms = ?3, connect_ms = ?4, handshake_ms = ?5, "
	    "first_byte_ms = ?6, exit_ip = ?7, checked_at = ?12, last_error = ?8, consecutive_failures = ?9, "
	    "consecutive_successes = ?10, fresh_until = ?12 + ?11 WHERE proxy_id = ?1";
	static const char *const hist_sql =
	    "INSERT INTO health_history (proxy_id, checked_at, status, latency_ms, exit_ip, error) "
	    "VALUES (?1, ?6, ?2, ?3, ?4, ?5)";
	static const char *const trim_sql =
	    "DELETE FROM health_history WHERE proxy_id = ?1 AND id <= (SELECT id FROM health_history "
	    "WHERE proxy_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";
	sqlite3 *db = h->d->db;
	sqlite3_stmt *st = NULL;
	int ok = r->error == PROBE_OK, rc = SQLITE_ERROR;

	if (ev_now_ms() < h->store_retry_at)
		return -EAGAIN;
	if (db_begin(db) < 0)
		goto refused;
	if (sqlite3_prepare_v2(db, up_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_text(st, 2, health_status_str(t->hs.status), -1, SQLITE_STATIC);
		if (ok) {
			sqlite3_bind_int(st, 3, (int)r->total_ms);
			sqlite3_bind_int(st, 4, (int)r->connect_ms);
			sqlite3_bind_int(st, 5, (int)r->handshake_ms);
			sqlite3_bind_int(st, 6, (int)r->first_byte_ms);
		}
		sqlite3_bind_text(st, 7, t->exit_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, ok ? "" : r->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 9, (int)t->hs.fails);
		sqlite3_bind_int(st, 10, (int)t->hs.succs);
		sqlite3_bind_int(st, 11, (int)health_fresh_s(h));
		sqlite3_bind_int64(st, 12, (int64_t)at);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && sqlite3_prepare_v2(db, hist_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_text(st, 2, ok ? "up" : "down", -1, SQLITE_STATIC);
		if (ok)
			sqlite3_bind_int(st, 3, (int)r->total_ms);
		sqlite3_bind_text(st, 4, ok || r->error == PROBE_EXIT_MISMATCH ? r->exit_ip : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, ok ? "" : r->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (int64_t)at);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_DONE && sqlite3_prepare_v2(db, trim_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_int(st, 2, (int)h->hist_max);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE || db_commit(db) < 0) {
		db_rollback(db);
		goto refused;
	}
	if (h->store_failing) {
		log_info("health results recorded again");
		h->store_failing = 0;
	}
	dbwatch_sync(h->d->watch);
	return 0;
refused:
	if (!h->store_failing)
		log_error("proxy %lld: cannot record health: %s (kept, retried every %u ms; meanwhile the stored "
			  "results go stale and their clients are blocked)",
			  (long long)t->id, sqlite3_errmsg(db), HEALTHD_STORE_RETRY_MS);
	h->store_failing = 1;
	h->store_retry_at = ev_now_ms() + HEALTHD_STORE_RETRY_MS;
	return -EAGAIN;
}

int store_check(struct healthd *h, int64_t id, const char *what, const char *sql, const char *status, int ok,
		const char *err, int ms)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(h->d->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, ok ? "" : err, -1, SQLITE_STATIC);
		if (ok && ms >= 0)
			sqlite3_bind_int(st, 4, ms);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("proxy %lld: cannot store the %s check: %s", (long long)id, what, sqlite3_errmsg(h->d->db));
		return -EIO;
	}
	dbwatch_sync(h->d->watch);
	return 0;
}

int store_pipelining(struct healthd *h, int64_t id, int v)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(h->d->db, "UPDATE proxy_health SET pipelining = ?2 WHERE proxy_id = ?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, v);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("proxy %lld: cannot store pipelining: %s", (long long)id, sqlite3_errmsg(h->d->db));
		return -EIO;
	}
	dbwatch_sync(h->d->watch);
	return 0;
}
