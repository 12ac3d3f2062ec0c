/* usage.c - see usage.h. */
#include "usage.h"

#include "db.h"
#include "log.h"
#include "quota.h"

#include <stdlib.h>

#define QUOTA_TICK_MS 10000 /* period ends, grants and raised quotas looked at this often */

struct usage {
	sqlite3 *db;
	const struct pgw_config *cfg;
	json_t *events;	  /* quota events for the feed to publish */
	int changed;	  /* mappings whose quota block changed: the feed notifies */
	int64_t quota_at; /* when quotas were last looked at */
	json_t *seen;	  /* ip -> [run, bytes_up, bytes_down, connections]: as last noted */
	json_t *pending;  /* ip -> [bytes_up, bytes_down, connections]: not in the DB yet */
	json_t *stored;	  /* ip -> [run, bytes_up, bytes_down, connections]: as the DB has them */
	int64_t flushed_at, pruned_at;
	int failing;
	int baseline; /* nothing added yet (a new install, or just upgraded to 0020): the first look
		       * only takes note of a forwarder that has run for over a minute, or its weeks
		       * would land in one minute */
};

static json_int_t at(json_t *a, size_t i)
{
	return json_integer_value(json_array_get(a, i));
}

struct usage *usage_new(sqlite3 *db, const struct pgw_config *cfg)
{
	struct usage *u = calloc(1, sizeof(*u));
	sqlite3_stmt *st = NULL;

	if (!u)
		return NULL;
	u->db = db;
	u->cfg = cfg;
	u->events = json_array();
	u->seen = json_object();
	u->pending = json_object();
	if (sqlite3_prepare_v2(db, "SELECT client_ip, run, bytes_up, bytes_down, connections FROM usage_seen", -1, &st,
			       NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			json_object_set_new(u->seen, (const char *)sqlite3_column_text(st, 0),
					    json_pack("[I, I, I, I]", (json_int_t)sqlite3_column_int64(st, 1),
						      (json_int_t)sqlite3_column_int64(st, 2),
						      (json_int_t)sqlite3_column_int64(st, 3),
						      (json_int_t)sqlite3_column_int64(st, 4)));
	sqlite3_finalize(st);
	u->stored = json_deep_copy(u->seen);
	u->baseline = json_object_size(u->seen) == 0 && db_query_int(db, "SELECT count(*) FROM client_usage", 0) == 0;
	return u;
}

void usage_free(struct usage *u)
{
	if (!u)
		return;
	json_decref(u->seen);
	json_decref(u->pending);
	json_decref(u->stored);
	json_decref(u->events);
	free(u);
}

json_t *usage_take_events(struct usage *u, int *changed)
{
	json_t *e = u ? u->events : NULL;

	*changed = u ? u->changed : 0;
	if (u) {
		u->events = json_array();
		u->changed = 0;
	}
	return e;
}

/* Quotas alone (no usage to add): a period that ended, a grant, a raised quota. */
static void quota_tick(struct usage *u, int64_t now)
{
	int n;

	u->quota_at = now;
	if (db_query_int(u->db, "SELECT count(*) FROM main.mappings WHERE quota_bytes > 0", 0) == 0)
		return;
	if (db_begin(u->db) < 0)
		return;
	n = quota_apply(u->db, u->cfg, NULL, now, u->events);
	if (n < 0 || db_commit(u->db) < 0) {
		db_rollback(u->db);
		return;
	}
	u->changed += n;
}

void usage_quota_now(struct usage *u, int64_t now_ms)
{
	if (u)
		quota_tick(u, now_ms);
}

/* Some client with pending bytes has a quota: its count cannot wait for the next flush. */
static int quota_pending(struct usage *u)
{
	sqlite3_stmt *st = NULL;
	const char *ip;
	json_t *v;
	int found = 0;

	if (sqlite3_prepare_v2(u->db, "SELECT 1 FROM main.mappings WHERE client_ip = ?1 AND quota_bytes > 0", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	json_object_foreach(u->pending, ip, v)
	{
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
		if ((found = sqlite3_step(st) == SQLITE_ROW))
			break;
	}
	sqlite3_finalize(st);
	return found;
}

/* Add the pending counts to their buckets and remember what was added, in one transaction. */
static int flush(struct usage *u, int64_t now)
{
	static const int steps[] = {60, 3600, 86400};
	sqlite3_stmt *add = NULL, *seen = NULL, *padd = NULL;
	const char *ip;
	json_t *v;
	int rc = SQLITE_DONE;

	if (db_begin(u->db) < 0)
		return -1;
	if (sqlite3_prepare_v2(
		u->db,
		/* only for an address a mapping holds: the last seconds of a mapping deleted or moved
		 * (its history deleted with it, migrations 0020/0029) are not the next holder's */
		"INSERT INTO client_usage (client_ip, step, t, bytes_up, bytes_down, connections) SELECT "
		"?1, ?2, ?3 / ?2 * ?2, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM main.mappings WHERE client_ip = ?1) "
		"ON CONFLICT (client_ip, step, t) DO UPDATE SET "
		"bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down, "
		"connections = connections + excluded.connections",
		-1, &add, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(u->db,
			       "INSERT OR REPLACE INTO usage_seen (client_ip, run, bytes_up, bytes_down, connections) "
			       "VALUES (?1, ?2, ?3, ?4, ?5)",
			       -1, &seen, NULL) != SQLITE_OK ||
	    /* the proxy carrying the client now (its primary while blocked) gets the same bytes */
	    sqlite3_prepare_v2(
		u->db,
		"INSERT INTO proxy_usage (proxy_id, step, t, bytes_up, bytes_down, connections) SELECT "
		"coalesce(s.carrying_proxy_id, s.proxy_id), ?2, ?3 / ?2 * ?2, ?4, ?5, ?6 FROM main.mapping_state s "
		"WHERE s.client_ip = ?1 ON CONFLICT (proxy_id, step, t) DO UPDATE SET bytes_up = bytes_up + "
		"excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down, connections = connections + "
		"excluded.connections",
		-1, &padd, NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	json_object_foreach(u->pending, ip, v)
	{
		for (size_t k = 0; rc == SQLITE_DONE && k < sizeof(steps) / sizeof(steps[0]); k++) {
			sqlite3_reset(add);
			sqlite3_bind_text(add, 1, ip, -1, SQLITE_STATIC);
			sqlite3_bind_int(add, 2, steps[k]);
			sqlite3_bind_int64(add, 3, now / 1000);
			for (int i = 0; i < 3; i++)
				sqlite3_bind_int64(add, 4 + i, at(v, (size_t)i));
			rc = sqlite3_step(add);
			if (rc != SQLITE_DONE)
				break;
			sqlite3_reset(padd);
			sqlite3_bind_text(padd, 1, ip, -1, SQLITE_STATIC);
			sqlite3_bind_int(padd, 2, steps[k]);
			sqlite3_bind_int64(padd, 3, now / 1000);
			for (int i = 0; i < 3; i++)
				sqlite3_bind_int64(padd, 4 + i, at(v, (size_t)i));
			rc = sqlite3_step(padd);
		}
	}
	json_object_foreach(u->seen, ip, v)
	{
		if (rc != SQLITE_DONE || json_equal(v, json_object_get(u->stored, ip)))
			continue;
		sqlite3_reset(seen);
		sqlite3_bind_text(seen, 1, ip, -1, SQLITE_STATIC);
		for (int i = 0; i < 4; i++)
			sqlite3_bind_int64(seen, 2 + i, at(v, (size_t)i));
		rc = sqlite3_step(seen);
	}
	sqlite3_finalize(add);
	sqlite3_finalize(seen);
	sqlite3_finalize(padd);
	if (rc == SQLITE_DONE) { /* the quotas count the same bytes, in the same transaction */
		int n = quota_apply(u->db, u->cfg, u->pending, now, u->events);
		if (n < 0)
			rc = SQLITE_ERROR;
		else
			u->changed += n;
		u->quota_at = now;
	}
	if (rc == SQLITE_DONE && now - u->pruned_at > 3600 * 1000) {
		rc = sqlite3_exec(
			 u->db,
			 "DELETE FROM client_usage WHERE (step = 60 AND t < unixepoch() - 86400) OR (step = 3600 "
			 "AND t < unixepoch() - 31 * 86400) OR (step = 86400 AND t < unixepoch() - 366 * 86400); "
			 "DELETE FROM proxy_usage WHERE (step = 60 AND t < unixepoch() - 86400) OR (step = 3600 "
			 "AND t < unixepoch() - 31 * 86400) OR (step = 86400 AND t < unixepoch() - 366 * 86400)",
			 NULL, NULL, NULL) == SQLITE_OK
			 ? SQLITE_DONE
			 : SQLITE_ERROR;
		u->pruned_at = now;
	}
	if (rc != SQLITE_DONE || db_commit(u->db) < 0) {
		db_rollback(u->db);
		return -1;
	}
	json_object_clear(u->pending);
	json_decref(u->stored);
	u->stored = json_deep_copy(u->seen);
	return 0;
}

void usage_note(struct usage *u, json_t *fwd, int64_t now)
{
	json_int_t run = json_integer_value(json_object_get(fwd, "started_ms"));
	const char *ip;
	json_t *c;

	if (!u || !run)
		return;
	json_object_foreach(json_object_get(fwd, "clients"), ip, c)
	{
		/* bytes: TCP and UDP (the quota counts both) */
		json_int_t cur[3] = {json_integer_value(json_object_get(c, "bytes_up")) +
					 json_integer_value(json_object_get(c, "udp_bytes_up")),
				     json_integer_value(json_object_get(c, "bytes_down")) +
					 json_integer_value(json_object_get(c, "udp_bytes_down")),
				     json_integer_value(json_object_get(c, "connections"))},
			   d[3];
		json_t *s = json_object_get(u->seen, ip), *p;
		int same = s && at(s, 0) == run;

		for (int i = 0; same && i < 3; i++) /* counters that went back: a new run after all */
			same = cur[i] >= at(s, (size_t)i + 1);
		for (int i = 0; i < 3; i++) /* a new forwarder run counts from 0 */
			d[i] = same ? cur[i] - at(s, (size_t)i + 1) : cur[i];
		if (u->baseline && now - run > 60000) /* a forwarder that ran long before the history began */
			d[0] = d[1] = d[2] = 0;
		if (!d[0] && !d[1] && !d[2] && same)
			continue;
		json_object_set_new(u->seen, ip, json_pack("[I, I, I, I]", run, cur[0], cur[1], cur[2]));
		if (!d[0] && !d[1] && !d[2])
			continue; /* a new forwarder that has counted nothing for it yet */
		p = json_object_get(u->pending, ip);
		json_object_set_new(u->pending, ip,
				    json_pack("[I, I, I]", at(p, 0) + d[0], at(p, 1) + d[1], at(p, 2) + d[2]));
	}
	if (u->baseline) { /* written with the next real growth (usage_seen), or kept in memory */
		u->baseline = 0;
		return;
	}
	usage_tick(u, now);
}

void usage_tick(struct usage *u, int64_t now)
{
	if (!u)
		return;
	if (json_object_size(u->pending) == 0 || (now - u->flushed_at < USAGE_FLUSH_MS && !quota_pending(u))) {
		if (now - u->quota_at >= QUOTA_TICK_MS)
			quota_tick(u, now);
		return;
	}
	u->flushed_at = now;
	if (flush(u, now) < 0) {
		if (!u->failing)
			log_warnx("usage history: cannot write (%s); kept and tried again", sqlite3_errmsg(u->db));
		u->failing = 1;
	} else {
		u->failing = 0;
	}
}
