/* crud.c - see crud.h: the scaffolding every resource handler shares. */
#include "crud.h"

#include "auth.h"
#include "fwdctl.h"

#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *json_nullable_int(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(st, col));
}

int reply_db_error(struct req *r, sqlite3 *db)
{
	return reply_error(r, 500, "internal", "database error: %s", sqlite3_errmsg(db));
}

sqlite3 *read_only_start(struct req *r, const char *admin_only)
{
	sqlite3 *db;

	if (auth_require(r, 0) < 0)
		return NULL;
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method), NULL;
	if (admin_only && strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "%s", admin_only), NULL;
	if (!(db = api_db(r->api)))
		reply_error(r, 503, "unavailable", "database unavailable");
	return db;
}

int reply_deleted(struct req *r, sqlite3 *db, const char *sql, int64_t id, const char *action, const char *kind,
		  json_t *before, unsigned topic)
{
	sqlite3_stmt *st = NULL;
	char oid[24];

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		json_decref(before);
		return reply_db_error(r, db);
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		json_decref(before);
		return reply_db_error(r, db);
	}
	sqlite3_finalize(st);
	if (sqlite3_changes(db) != 1) { /* gone meanwhile (or never this organisation's) */
		json_decref(before);
		return reply_error(r, 404, "not_found", "no %s %lld", kind, (long long)id);
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, action, kind, oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, topic);
	return reply_empty(r, 204);
}

int crud_route(struct req *r, sqlite3 *db, const struct crud *c, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	int64_t id;

	if (nseg == 0 && get && c->list)
		return c->list(r, db);
	if (nseg == 0 && get) {
		sqlite3_stmt *st = NULL;
		json_t *items = json_array();

		if (sqlite3_prepare_v2(db, c->ids_sql, -1, &st, NULL) != SQLITE_OK) {
			json_decref(items);
			return reply_db_error(r, db);
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_t *item = c->get(db, sqlite3_column_int64(st, 0));
			if (item)
				json_array_append_new(items, item);
		}
		sqlite3_finalize(st);
		return reply_json(r, 200,
				  json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
	}
	if (nseg == 0 && strcmp(r->method, "POST") == 0)
		return c->save(r, db, -1, 0);
	if (nseg > 1)
		return reply_error(r, 404, "not_found", "no such resource");
	if (nseg == 1) {
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such %s", c->noun);
		if (get) {
			json_t *item = c->get(db, id);
			return item ? reply_json(r, 200, item)
				    : reply_error(r, 404, "not_found", "no %s %lld", c->noun, (long long)id);
		}
		if (c->put && strcmp(r->method, "PUT") == 0)
			return c->save(r, db, id, 0);
		if (strcmp(r->method, "PATCH") == 0)
			return c->save(r, db, id, 1);
		if (strcmp(r->method, "DELETE") == 0)
			return c->del(r, db, id);
	}
	return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
}

/* The last answer, shared by every thread for FWDSTATS_FRESH_MS: however many requests come
 * (the dashboard, Prometheus, the feed), the forwarder builds its stats at most about once a
 * second, and one thread asks while the others wait for its answer. */
#define FWDSTATS_FRESH_MS 1000
static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *fs_last;
static long long fs_at;
static int fs_waited; /* the ask behind fs_last waited this long (ms); a failure is shared only
		       * with callers that would not have waited longer */

json_t *fwdstats_load(const char *run_dir, int timeout_ms, int fresh)
{
	static long long warned;
	char err[256], *out = NULL;
	size_t len;
	json_t *j = NULL;
	long long now = (long long)ev_now_ms();
	int rc;

	pthread_mutex_lock(&fs_lock);
	if (!fresh && fs_at && now - fs_at < FWDSTATS_FRESH_MS && (fs_last || timeout_ms <= fs_waited)) {
		j = json_incref(fs_last); /* jansson's reference counts are atomic; nobody changes it */
		pthread_mutex_unlock(&fs_lock);
		return j;
	}
	/* fresh: the feed's ask, which writes the usage history (a stopping forwarder waits for it) */
	rc = fwdctl_call(run_dir, fresh ? "stats for=usage\n" : "stats\n", &out, &len, timeout_ms, err, sizeof(err));
	if (rc == 0) {
		j = json_loadb(out, len, 0, NULL);
		if (j && !json_is_object(json_object_get(j, "closes"))) { /* an error answer, not stats */
			json_decref(j);
			j = NULL;
		}
	} else if (rc != -ENOENT && rc != -ECONNREFUSED && now - warned > 60000) { /* running, yet no answer */
		warned = now;
		log_warnx("%s: no forwarder stats this time (usage and quotas catch up at the next answer)", err);
	}
	free(out);
	/* a failure is shared too (a hung forwarder costs one wait a second, not one per request),
	 * but not with a caller willing to wait longer than the ask that failed (the feed asks with
	 * 500 ms; a /metrics scrape right after would otherwise lose the forwarder's section) */
	json_decref(fs_last);
	fs_last = json_incref(j);
	fs_at = (long long)ev_now_ms();
	fs_waited = timeout_ms;
	pthread_mutex_unlock(&fs_lock);
	return j;
}

/* The keys of rows (column 0 as text) sql returns for org, as a JSON object key -> true. */
static json_t *key_set(sqlite3 *db, const char *sql, int64_t org)
{
	sqlite3_stmt *st = NULL;
	json_t *set = json_object();

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, org);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_object_set_new(set, (const char *)sqlite3_column_text(st, 0), json_true());
	}
	sqlite3_finalize(st);
	return set;
}

/* The members of obj whose keys are in set (copies). */
static json_t *only(json_t *obj, json_t *set)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach(obj, k, v) if (json_object_get(set, k)) json_object_set(out, k, v);
	return out;
}

/* The counts of org's clients: of an address it maps, and made while the address was org's (the
 * forwarder says whose, org_id: an address just moved from another organisation shows none of the
 * other's counts, until the forwarder's reload starts them over as the new one's). */
static json_t *own_clients(json_t *clients, json_t *ips, int64_t org)
{
	json_t *out = json_object(), *v, *o;
	const char *k;

	json_object_foreach(clients, k, v)
	{
		o = json_object_get(v, "org_id");
		if (json_object_get(ips, k) && (!o || json_integer_value(o) == org)) /* (none: an older forwarder) */
			json_object_set(out, k, v);
	}
	return out;
}

json_t *fwdstats_scoped(json_t *all, sqlite3 *db, int64_t org)
{
	json_t *out, *clients, *ips, *ids, *v, *u, *d;
	json_int_t active = 0, conns = 0, up = 0, down = 0, dg_up = 0, dg_down = 0, ub_up = 0, ub_down = 0;
	const char *k;

	if (!all || org == API_ORG_ALL)
		return all;
	ips = key_set(db, "SELECT client_ip FROM main.mappings WHERE org_id = ?1", org);
	ids = key_set(db, "SELECT id FROM main.proxies WHERE org_id = ?1", org);
	clients = own_clients(json_object_get(all, "clients"), ips, org);
	json_object_foreach(clients, k, v)
	{
		active += json_integer_value(json_object_get(v, "active"));
		conns += json_integer_value(json_object_get(v, "connections"));
		up += json_integer_value(json_object_get(v, "bytes_up"));
		down += json_integer_value(json_object_get(v, "bytes_down"));
		dg_up += json_integer_value(json_object_get(v, "udp_datagrams_up"));
		dg_down += json_integer_value(json_object_get(v, "udp_datagrams_down"));
		ub_up += json_integer_value(json_object_get(v, "udp_bytes_up"));
		ub_down += json_integer_value(json_object_get(v, "udp_bytes_down"));
	}
	out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "mappings", (json_int_t)json_object_size(ips), "active",
			active, "accepted", conns, "bytes_up", up, "bytes_down", down, "clients", clients);
	if ((u = json_object_get(all, "udp")))
		json_object_set_new(
		    out, "udp",
		    json_pack("{s:O?, s:O?, s:O?, s:I, s:I, s:I, s:I, s:o}", "enabled", json_object_get(u, "enabled"),
			      "listening", json_object_get(u, "listening"), "error", json_object_get(u, "error"),
			      "datagrams_up", dg_up, "datagrams_down", dg_down, "bytes_up", ub_up, "bytes_down",
			      ub_down, "proxies", only(json_object_get(u, "proxies"), ids)));
	/* the gateway's state: its clients' too */
	if ((v = json_object_get(all, "mappings_unread")))
		json_object_set(out, "mappings_unread", v);
	if ((v = json_object_get(all, "mappings_unread_since_ms")))
		json_object_set(out, "mappings_unread_since_ms", v);
	if ((d = json_object_get(all, "dns")))
		json_object_set_new(out, "dns",
				    json_pack("{s:o}", "proxies", only(json_object_get(d, "proxies"), ids)));
	json_decref(ips);
	json_decref(ids);
	json_decref(all);
	return out;
}
