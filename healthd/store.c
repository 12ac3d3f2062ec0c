/* store.c - see store.h. */
#include "store.h"

#include "audit.h"
#include "db.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* How long a result may be trusted: the next one is due within an interval plus the three
 * steps' timeouts; one interval more for slack. Past it the proxy counts as unknown (blocked),
 * so a stopped or wedged healthd fails closed (migration 0008). */
static unsigned health_fresh_s(const struct healthd *h)
{
	return (2 * h->params.interval_ms + 3 * h->params.timeout_ms + 999) / 1000;
}

/* A failover mapping this proxy is one of (primary or listed) and who carries it (0: blocked). */
struct carried {
	int64_t id, org_id, by, stored; /* stored: mapping_carrier's, 0 for none */
	char ip[NET_IP_STR_MAX];
};

static int carried_load(sqlite3 *db, int64_t proxy_id, struct carried **out, size_t *n)
{
	static const char *const sql =
	    "SELECT id, org_id, coalesce(carrying_proxy_id, 0), client_ip, coalesce((SELECT c.proxy_id FROM "
	    "mapping_carrier c WHERE c.mapping_id = mapping_state.id), 0) FROM mapping_state WHERE on_down = "
	    "'failover' AND (proxy_id = ?1 OR id IN (SELECT mapping_id FROM mapping_failover WHERE proxy_id = ?1)) "
	    "ORDER BY id";
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, proxy_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			struct carried *p = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(*p));
			if (!p)
				break;
			*out = p;
		}
		(*out)[*n].id = sqlite3_column_int64(st, 0);
		(*out)[*n].org_id = sqlite3_column_int64(st, 1);
		(*out)[*n].by = sqlite3_column_int64(st, 2);
		snprintf((*out)[*n].ip, sizeof((*out)[*n].ip), "%s", (const char *)sqlite3_column_text(st, 3));
		(*out)[*n].stored = sqlite3_column_int64(st, 4);
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		return -EIO;
	}
	return 0;
}

/* mapping_carrier follows who carries each mapping now (migration 0018: the view then keeps a
 * client where it is). SQLite's result code. */
static int carried_remember(sqlite3 *db, const struct carried *now, size_t n)
{
	sqlite3_stmt *put = NULL, *del = NULL;
	int rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO mapping_carrier (mapping_id, proxy_id) VALUES (?1, ?2)", -1,
			       &put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM mapping_carrier WHERE mapping_id = ?1", -1, &del, NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	for (size_t i = 0; rc == SQLITE_DONE && i < n; i++) {
		sqlite3_stmt *st = now[i].by ? put : del;
		if (now[i].by == now[i].stored)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, now[i].id);
		if (now[i].by)
			sqlite3_bind_int64(st, 2, now[i].by);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(put);
	sqlite3_finalize(del);
	return rc;
}

/* Walk the failover mappings both before and after this result: fn for each whose carrier
 * changed. */
static int carried_walk(const struct carried *was, size_t nwas, const struct carried *now, size_t nnow,
			void (*fn)(struct healthd *h, const struct target *t, const struct carried *was,
				   const struct carried *now),
			struct healthd *h, const struct target *t)
{
	int moved = 0;

	for (size_t i = 0, k = 0; i < nwas && k < nnow;) {
		if (was[i].id != now[k].id) { /* one of them was added or deleted meanwhile */
			was[i].id < now[k].id ? i++ : k++;
			continue;
		}
		if (was[i].by != now[k].by) {
			moved++;
			if (fn)
				fn(h, t, &was[i], &now[k]);
		}
		i++, k++;
	}
	return moved;
}

/* A move between two proxies: an audit row of pgw-healthd's (in the result's transaction). */
static void carried_audit(struct healthd *h, const struct target *t, const struct carried *was,
			  const struct carried *now)
{
	char oid[24], before[64], after[160];
	struct audit_entry e = {.username = "pgw-healthd",
				.remote_addr = "",
				.action = "mapping.failover",
				.object_type = "mapping",
				.object_id = oid,
				.before_json = before,
				.after_json = after,
				.result = "ok",
				.org_id = now->org_id};

	(void)t;
	if (!was->by || !now->by)
		return;
	snprintf(oid, sizeof(oid), "%lld", (long long)now->id);
	snprintf(before, sizeof(before), "{\"carrying_proxy_id\":%lld}", (long long)was->by);
	snprintf(after, sizeof(after), "{\"carrying_proxy_id\":%lld,\"client_ip\":\"%s\"}", (long long)now->by,
		 now->ip);
	if (audit_record(h->d->db, &e) < 0)
		log_warnx("client %s: cannot write the audit row of its failover", now->ip);
}

/* Once committed: a log line for each client this result moved, left with no proxy, or carried
 * again. */
static void carried_log(struct healthd *h, const struct target *t, const struct carried *was, const struct carried *now)
{
	(void)h;
	if (!was->by || !now->by)
		log_info("client %s: %s (proxy %lld is %s)", now->ip,
			 now->by ? "carried again" : "blocked: no proxy of its failover list is up", (long long)t->id,
			 health_status_str(t->hs.status));
	else
		log_info("client %s: failover from proxy %lld to proxy %lld (proxy %lld is %s, %u probes up)", now->ip,
			 (long long)was->by, (long long)now->by, (long long)t->id, health_status_str(t->hs.status),
			 t->hs.ups);
}

/* Under the result's transaction, in a savepoint of its own: who carries the failover
 * mappings of this proxy now (*now), the moves audited, mapping_carrier kept. A failure here
 * undoes only this part (logged): the health result is stored whatever happens to it, or every
 * client would go stale and blocked over a bookkeeping error. Returns the moves. */
static int carried_after(struct healthd *h, const struct target *t, const struct carried *was, size_t nwas,
			 struct carried **now, size_t *nnow)
{
	sqlite3 *db = h->d->db;
	int moved = 0, rc = SQLITE_ERROR;

	if (sqlite3_exec(db, "SAVEPOINT carriers", NULL, NULL, NULL) != SQLITE_OK)
		return 0;
	if (carried_load(db, t->id, now, nnow) == 0) {
		moved = carried_walk(was, nwas, *now, *nnow, carried_audit, h, t);
		rc = carried_remember(db, *now, *nnow);
	}
	if (rc != SQLITE_DONE) {
		log_warnx("proxy %lld: failover bookkeeping failed (%s); the health result is stored without it",
			  (long long)t->id, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK TO carriers", NULL, NULL, NULL);
		free(*now);
		*now = NULL;
		*nnow = 0;
		moved = 0;
	}
	sqlite3_exec(db, "RELEASE carriers", NULL, NULL, NULL);
	return moved;
}

int store_result(struct healthd *h, const struct target *t, const struct probe_result *r, time_t at, int *moved)
{
	static const char *const up_sql =
	    "UPDATE proxy_health SET status = ?2, latency_ms = ?3, connect_ms = ?4, handshake_ms = ?5, "
	    "first_byte_ms = ?6, exit_ip = ?7, checked_at = ?12, last_error = ?8, consecutive_failures = ?9, "
	    "consecutive_successes = ?10, fresh_until = ?12 + ?11, up_probes = ?13, "
	    "probed_host = coalesce(?14, probed_host), probed_port = coalesce(?15, probed_port), "
	    "probed_addr = coalesce(?16, probed_addr) WHERE proxy_id = ?1 AND verify_gen = ?17"; /* 0030, 0031 */
	static const char *const hist_sql =
	    "INSERT INTO health_history (proxy_id, checked_at, status, latency_ms, exit_ip, error) "
	    "VALUES (?1, ?6, ?2, ?3, ?4, ?5)";
	static const char *const trim_sql =
	    "DELETE FROM health_history WHERE proxy_id = ?1 AND id <= (SELECT id FROM health_history "
	    "WHERE proxy_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";
	sqlite3 *db = h->d->db;
	sqlite3_stmt *st = NULL;
	struct carried *was = NULL, *now = NULL;
	size_t nwas = 0, nnow = 0;
	int ok = r->error == PROBE_OK, rc = SQLITE_ERROR, have_was;

	*moved = 0;

	if (ev_now_ms() < h->store_retry_at)
		return -EAGAIN;
	if (db_begin(db) < 0)
		goto refused;
	have_was = carried_load(db, t->id, &was, &nwas) == 0; /* else no failover bookkeeping this time */
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
		sqlite3_bind_int(st, 13, (int)t->hs.ups);
		sqlite3_bind_int64(st, 17, t->verify_gen);
		if (ok && t->unsaved_addr[0]) { /* where this result's probe went, taken with it */
			sqlite3_bind_text(st, 14, t->unsaved_host, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 15, t->unsaved_port);
			sqlite3_bind_text(st, 16, t->unsaved_addr, -1, SQLITE_STATIC);
		}
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && sqlite3_changes(db) == 0) { /* changed (0031) or deleted since the probe began */
		db_rollback(db);
		free(was);
		return -ESTALE;
	}
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
		sqlite3_bind_int(st, 2, (int)h->params.hist_max);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_DONE && have_was)
		*moved = carried_after(h, t, was, nwas, &now, &nnow);
	if (rc != SQLITE_DONE || db_commit(db) < 0) {
		free(was);
		free(now);
		db_rollback(db);
		*moved = 0;
		goto refused;
	}
	if (*moved)
		carried_walk(was, nwas, now, nnow, carried_log, h, t);
	free(was);
	free(now);
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

int store_capability(struct healthd *h, int64_t id, int early, int v)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(h->d->db,
			       early ? "UPDATE proxy_health SET early_data = ?2 WHERE proxy_id = ?1"
				     : "UPDATE proxy_health SET pipelining = ?2 WHERE proxy_id = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, v);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("proxy %lld: cannot store %s: %s", (long long)id, early ? "early_data" : "pipelining",
			  sqlite3_errmsg(h->d->db));
		return -EIO;
	}
	dbwatch_sync(h->d->watch);
	return 0;
}
