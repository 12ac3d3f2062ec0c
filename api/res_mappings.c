/* res_mappings.c - /api/v1/mappings: health-gated create and edit, state active|blocked. */
#include "resources.h"

#include "db.h"

#include "gate.h"
#include "mapping_rules.h"
#include "quota.h"
#include "net.h"
#include "settings.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct jfield mapping_fields[] = {
    {"client_ip", J_STR, 1, 3, 45},
    {"proxy_id", J_INT, 1, 1, (1LL << 53)},
    {"enabled", J_BOOL, 0, 0, 1},
    {"label", J_STR, 0, 0, 128},
    {"on_down", J_STR, 0, 5, 8},
    {"failover_proxy_ids", J_ARRAY, 0, 0, MAPPING_FAILOVER_MAX},
    {"max_conns", J_INT, 0, 0, 1000000},
    {"new_conns_per_s", J_INT, 0, 0, 100000},
    {"mac", J_STR, 0, 0, 17},
    {"down_kbit", J_INT, 0, 0, 100000000},
    {"up_kbit", J_INT, 0, 0, 100000000},
    {"quota_bytes", J_INT, 0, 0, 1000000000000000LL},
    {"quota_period", J_STR, 0, 3, 5},
};
#define NFIELDS (sizeof(mapping_fields) / sizeof(mapping_fields[0]))

/* "active" and "carrying_proxy_id" are the view of migrations 0004 and 0018: the same rule
 * pgw-agent and pgw-forwarder apply. */
#define MAPPING_SELECT                                                                                                 \
	"SELECT s.id, s.client_ip, s.proxy_id, s.enabled, s.label, s.active, s.on_down, s.carrying_proxy_id, (SELECT " \
	"json_group_array(proxy_id) FROM (SELECT proxy_id FROM main.mapping_failover f WHERE f.mapping_id = "          \
	"s.id ORDER BY f.pos)), m.max_conns, m.new_conns_per_s, m.mac, m.down_kbit, m.up_kbit, m.quota_bytes, "        \
	"m.quota_period FROM mapping_state s "                                                                         \
	"JOIN main.mappings m ON "                                                                                     \
	"m.id = s.id "

static json_t *row_json(sqlite3_stmt *st)
{
	json_t *list = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);

	return json_pack(
	    "{s:I, s:s, s:I, s:b, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:s, s:I, s:I, s:I, s:s}", "id",
	    (json_int_t)sqlite3_column_int64(st, 0), "client_ip", sqlite3_column_text(st, 1), "proxy_id",
	    (json_int_t)sqlite3_column_int64(st, 2), "enabled", sqlite3_column_int(st, 3), "label",
	    sqlite3_column_text(st, 4), "state", sqlite3_column_int(st, 5) ? "active" : "blocked", "on_down",
	    sqlite3_column_text(st, 6), "carrying_proxy_id",
	    sqlite3_column_type(st, 7) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(st, 7)),
	    "failover_proxy_ids", list ? list : json_array(), "max_conns", (json_int_t)sqlite3_column_int64(st, 9),
	    "new_conns_per_s", (json_int_t)sqlite3_column_int64(st, 10), "mac", sqlite3_column_text(st, 11),
	    "down_kbit", (json_int_t)sqlite3_column_int64(st, 12), "up_kbit", (json_int_t)sqlite3_column_int64(st, 13),
	    "quota_bytes", (json_int_t)sqlite3_column_int64(st, 14), "quota_period", sqlite3_column_text(st, 15));
}

static json_t *mapping_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL;

	if (sqlite3_prepare_v2(db, MAPPING_SELECT "WHERE s.id = ?1", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = row_json(st);
	sqlite3_finalize(st);
	return j;
}

/* Whether mapping id holds every field a request may set as before has them: 1 it does, 0 it
 * was changed, -1 it is gone. */
static int mapping_unchanged(sqlite3 *db, int64_t id, const json_t *before)
{
	json_t *now = mapping_json(db, id);
	int same = now ? 1 : -1;

	for (size_t k = 0; same == 1 && k < NFIELDS; k++) {
		const json_t *a = json_object_get(before, mapping_fields[k].name),
			     *b = json_object_get(now, mapping_fields[k].name);
		same = a == b || json_equal(a, b); /* (both absent: json_equal says no) */
	}
	json_decref(now);
	return same;
}

/* The health gate of a failover mapping: its proxies until one is up — those up by their stored
 * health first (in list order), then the others — within twice one gate's wait in all. 1
 * (*passed: its check), 0 (*checks: every one made, all down), or gate_check()'s error. */
static int gate_failover(struct req *r, sqlite3 *db, int64_t primary, const json_t *list, json_t **passed,
			 json_t **checks)
{
	unsigned wait = gate_wait_ms(db, r->api->cfg);
	size_t n = json_array_size(list) + 1, order[MAPPING_FAILOVER_MAX + 1], k = 0;
	uint64_t until;
	struct timespec ts;

	*passed = NULL;
	*checks = json_array();
	for (int pass = 0; pass < 2; pass++) /* usable ones first, then the rest, each in list order */
		for (size_t i = 0; i < n && i <= MAPPING_FAILOVER_MAX; i++) {
			int64_t id = i ? json_integer_value(json_array_get(list, i - 1)) : primary;
			int usable =
			    db_query_int1(db, "SELECT count(*) FROM main.proxy_usable WHERE proxy_id = ?1", id, 0) > 0;
			if (usable == !pass)
				order[k++] = i;
		}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	until = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 2u * wait;
	for (size_t j = 0; j < k; j++) {
		json_t *res = NULL;
		int64_t id = order[j] ? json_integer_value(json_array_get(list, order[j] - 1)) : primary;
		int g;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (j > 0 && (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u >= until)
			break; /* a request is not held for minutes: what was checked answers */
		if ((g = gate_check(r->api->cfg, id, wait, &res)) < 0)
			return g;
		json_array_append(*checks, res);
		if (g == 1) {
			*passed = res;
			return 1;
		}
		json_decref(res);
	}
	return 0;
}

/* The failover list as sent: proxy ids, no repeats, not the primary, each one the organisation's.
 * 0, or an error reply sent. */
static int failover_list_check(struct req *r, sqlite3 *db, const json_t *list, int64_t primary)
{
	int64_t org = db_query_int1(db, "SELECT org_id FROM main.proxies WHERE id = ?1", primary, -1);

	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *v = json_array_get(list, i), *p;
		int64_t id = json_integer_value(v);

		if (!json_is_integer(v) || id < 1)
			return reply_error(r, 400, "bad_request", "'failover_proxy_ids' must be a list of proxy ids"),
			       -1;
		if (id == primary)
			return reply_error(
				   r, 400, "bad_request",
				   "proxy %lld is the primary (proxy_id); 'failover_proxy_ids' lists the others",
				   (long long)id),
			       -1;
		for (size_t k = 0; k < i; k++)
			if (json_integer_value(json_array_get(list, k)) == id)
				return reply_error(r, 400, "bad_request", "proxy %lld is twice in 'failover_proxy_ids'",
						   (long long)id),
				       -1;
		if (!(p = proxy_json(db, id)))
			return reply_error(r, 404, "not_found", "no proxy %lld (in 'failover_proxy_ids')",
					   (long long)id),
			       -1;
		json_decref(p);
		/* a superadmin sees every organisation's: the list is the primary's organisation's */
		if (db_query_int1(db, "SELECT org_id FROM main.proxies WHERE id = ?1", id, -2) != org)
			return reply_error(r, 400, "bad_request",
					   "proxy %lld belongs to another organisation than the primary (proxy_id)",
					   (long long)id),
			       -1;
	}
	return 0;
}

/* Replace the mapping's failover list (inside the write's transaction). SQLite's result code. */
static int failover_store(sqlite3 *db, int64_t id, const json_t *list)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "DELETE FROM main.mapping_failover WHERE mapping_id = ?1", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		return rc;
	rc = sqlite3_prepare_v2(db, "INSERT INTO main.mapping_failover (mapping_id, pos, proxy_id) VALUES (?1, ?2, ?3)",
				-1, &st, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < json_array_size(list); i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, (int)i + 1);
		sqlite3_bind_int64(st, 3, json_integer_value(json_array_get(list, i)));
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? SQLITE_DONE : rc;
}

/* POST (id < 0), PUT, PATCH. The health gate runs before anything is stored. */
static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	char err[256], oid[24], canon[NET_IP_STR_MAX], mac[NET_MAC_STR_MAX] = "";
	const char *why = NULL, *on_down, *quota_period;
	json_t *before = NULL, *after, *health = NULL, *checks = NULL, *v, *list;
	const char *ip;
	int64_t proxy_id;
	int enabled, gate = 0, rc, failover;
	sqlite3_stmt *st = NULL;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, mapping_fields, NFIELDS, partial, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (id > 0 && !(before = mapping_json(db, id)))
		return reply_error(r, 404, "not_found", "no mapping %lld", (long long)id);
	v = json_object_get(r->body, "client_ip");
	ip = v ? json_string_value(v) : json_string_value(json_object_get(before, "client_ip"));
	if (client_ip_check(db, r->api->cfg, ip, canon, &why) < 0) {
		reply_error(r, 400, "bad_request", "'client_ip' %.64s %s", ip, why);
		goto out;
	}
	ip = canon; /* one client, one spelling */
	v = json_object_get(r->body, "on_down");
	on_down = v		      ? json_string_value(v)
		  : partial && before ? json_string_value(json_object_get(before, "on_down"))
				      : "block"; /* PUT and POST: the default */
	if (strcmp(on_down, "block") != 0 && strcmp(on_down, "failover") != 0) {
		reply_error(r, 400, "bad_request", "'on_down' must be block or failover");
		goto out;
	}
	failover = on_down[0] == 'f';
	v = json_object_get(r->body, "quota_period");
	quota_period = v		   ? json_string_value(v)
		       : partial && before ? json_string_value(json_object_get(before, "quota_period"))
					   : "month";
	if (strcmp(quota_period, "day") != 0 && strcmp(quota_period, "week") != 0 &&
	    strcmp(quota_period, "month") != 0) {
		reply_error(r, 400, "bad_request", "'quota_period' must be day, week or month");
		goto out;
	}
	/* mac: "" unbinds; PATCH keeps it unless sent, PUT and POST default to none */
	v = json_object_get(r->body, "mac");
	if (!v && partial && before)
		v = json_object_get(before, "mac");
	if (v && *json_string_value(v)) {
		uint8_t m[6];
		if (net_mac_parse(json_string_value(v), m) < 0) {
			reply_error(r, 400, "bad_request",
				    "'mac' must be a unicast MAC address like 02:00:00:aa:bb:cc (or \"\" for none)");
			goto out;
		}
		net_mac_str(m, mac);
	}
	/* PUT replaces the list (absent: none); PATCH keeps it unless sent */
	list = json_object_get(r->body, "failover_proxy_ids");
	if (!list)
		list = partial && before ? json_object_get(before, "failover_proxy_ids") : NULL;
	v = json_object_get(r->body, "proxy_id");
	proxy_id = v ? json_integer_value(v) : json_integer_value(json_object_get(before, "proxy_id"));
	{
		json_t *p = proxy_json(db, proxy_id);
		if (!p) {
			reply_error(r, 404, "not_found", "no proxy %lld", (long long)proxy_id);
			goto out;
		}
		json_decref(p);
	}
	if (failover_list_check(r, db, list, proxy_id) < 0)
		goto out;
	v = json_object_get(r->body, "enabled");
	enabled = v ? json_is_true(v) : before ? json_is_true(json_object_get(before, "enabled")) : 1;
	gate = mapping_gate_needed(before != NULL, json_integer_value(json_object_get(before, "proxy_id")),
				   json_is_true(json_object_get(before, "enabled")), proxy_id, enabled);
	/* a failover mapping needs one proxy of its list up; checked again when the list or the mode
	 * changes, so that a mapping never becomes failover onto proxies that are all down */
	if (failover && enabled && !gate) {
		json_t *none = json_array();
		gate = !before || strcmp(json_string_value(json_object_get(before, "on_down")), "failover") != 0 ||
		       !json_equal(list ? list : none, json_object_get(before, "failover_proxy_ids"));
		json_decref(none);
	}
	if (gate) {
		int g = failover ? gate_failover(r, db, proxy_id, list, &health, &checks)
				 : gate_check(r->api->cfg, proxy_id, gate_wait_ms(db, r->api->cfg), &health);
		if (g < 0) {
			reply_gate_unavailable(r, g);
			goto out;
		}
		if (g == 0) {
			api_audit(r, before ? "mapping.update" : "mapping.create", "mapping", ip, before, r->body,
				  "failed");
			if (failover) {
				reply_error_with(r, 422, "proxy_down", json_pack("{s:O}", "checks", checks),
						 "no proxy of the failover list passed its health check (%zu checked); "
						 "nothing was stored",
						 json_array_size(checks));
			} else {
				reply_error_with(r, 422, "proxy_down", json_pack("{s:o}", "check", health),
						 "proxy %lld failed its health check (%s); nothing was stored",
						 (long long)proxy_id,
						 json_string_value(json_object_get(health, "error")));
				health = NULL;
			}
			goto out;
		}
	}
	/* the address is the organisation's still, now that the write lock is held: its networks
	 * may have changed during the health gate's wait */
	if (db_begin(db) < 0) {
		reply_error(r, 503, "unavailable", "the database is busy; try again");
		goto out;
	}
	if (client_ip_check(db, r->api->cfg, ip, canon, &why) < 0) {
		db_rollback(db);
		reply_error(r, 400, "bad_request", "'client_ip' %.64s %s", ip, why);
		goto out;
	}
	/* every field is written from what was read before the gate's wait (seconds): a change
	 * another request stored meanwhile (a client disabled, a MAC bound) would be undone */
	if (before && (rc = mapping_unchanged(db, id, before)) != 1) {
		db_rollback(db);
		if (rc < 0)
			reply_error(r, 404, "not_found", "no mapping %lld", (long long)id);
		else
			reply_error(r, 409, "conflict",
				    "mapping %lld was changed by another request while this one waited (the "
				    "proxy's health check); nothing was stored: read it again and retry",
				    (long long)id);
		goto out;
	}
	if (id < 0)
		rc = sqlite3_prepare_v2(
		    db,
		    "INSERT INTO main.mappings (client_ip, proxy_id, enabled, label, on_down, "
		    "max_conns, new_conns_per_s, mac, down_kbit, up_kbit, quota_bytes, quota_period, "
		    "org_id) VALUES (?1, ?2, ?3, coalesce(?4, ''), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, " ORG_OWNER ")",
		    -1, &st, NULL);
	else
		rc = sqlite3_prepare_v2(
		    db,
		    partial
			? "UPDATE main.mappings SET client_ip = ?1, proxy_id = ?2, enabled = ?3, "
			  "label = coalesce(?4, label), on_down = ?6, max_conns = ?7, new_conns_per_s = ?8, "
			  "mac = ?9, down_kbit = ?10, up_kbit = ?11, quota_bytes = ?12, quota_period = ?13, "
			  "quota_exceeded = CASE WHEN ?12 = 0 THEN 0 ELSE quota_exceeded END, updated_at = unixepoch() "
			  "WHERE id = ?5 AND " ORG_SCOPED
			: "UPDATE main.mappings SET client_ip = ?1, proxy_id = ?2, enabled = ?3, "
			  "label = coalesce(?4, ''), on_down = ?6, max_conns = ?7, new_conns_per_s = ?8, "
			  "mac = ?9, down_kbit = ?10, up_kbit = ?11, quota_bytes = ?12, quota_period = ?13, "
			  "quota_exceeded = CASE WHEN ?12 = 0 THEN 0 ELSE quota_exceeded END, updated_at = unixepoch() "
			  "WHERE id "
			  "= ?5 AND " ORG_SCOPED,
		    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		reply_db_error(r, db);
		db_rollback(db);
		goto out;
	}
	sqlite3_bind_text(st, 1, ip, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, proxy_id);
	sqlite3_bind_int(st, 3, enabled);
	v = json_object_get(r->body, "label");
	if (v)
		sqlite3_bind_text(st, 4, json_string_value(v), -1, SQLITE_TRANSIENT);
	if (id > 0)
		sqlite3_bind_int64(st, 5, id);
	sqlite3_bind_text(st, 6, on_down, -1, SQLITE_STATIC);
	/* limits: PATCH keeps what it does not send; PUT and POST default to 0 (the settings') */
	for (int k = 0; k < 5; k++) {
		static const char *const lf[] = {"max_conns", "new_conns_per_s", "down_kbit", "up_kbit", "quota_bytes"};
		static const int col[] = {7, 8, 10, 11, 12};
		const char *f = lf[k];
		json_t *lv = json_object_get(r->body, f);
		sqlite3_bind_int64(st, col[k],
				   lv		       ? json_integer_value(lv)
				   : partial && before ? json_integer_value(json_object_get(before, f))
						       : 0);
	}
	sqlite3_bind_text(st, 9, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, quota_period, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
			reply_error(r, 409, "conflict", "client %s already has a mapping", ip);
		else
			reply_error(r, 400, "bad_request", "invalid mapping: %s", sqlite3_errmsg(db));
		db_rollback(db);
		goto out;
	}
	if (id > 0 && sqlite3_changes(db) != 1) { /* deleted during the gate's wait */
		db_rollback(db);
		reply_error(r, 404, "not_found", "no mapping %lld", (long long)id);
		goto out;
	}
	if (id < 0)
		id = sqlite3_last_insert_rowid(db);
	if ((rc = failover_store(db, id, list)) != SQLITE_DONE) {
		/* a proxy deleted during the gate's wait, or (the triggers) another organisation's */
		reply_error(r, 409, "conflict", "the failover list cannot be stored: %s", sqlite3_errmsg(db));
		db_rollback(db);
		goto out;
	}
	if (db_commit(db) < 0) {
		db_rollback(db);
		reply_error(r, 503, "unavailable", "the database is busy; try again");
		goto out;
	}
	if (json_object_get(r->body, "quota_bytes") && db_begin(db) == 0) {
		json_t *ev = json_array(); /* a larger quota ends a block at once */
		if (quota_apply(db, r->api->cfg, NULL, (int64_t)time(NULL) * 1000, ev) < 0 || db_commit(db) < 0) {
			db_rollback(db);
			json_decref(ev);
		} else {
			quota_publish(ev);
		}
	}
	after = mapping_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, before ? "mapping.update" : "mapping.create", "mapping", oid, before, after, "ok");
	api_notify(r, TOPIC_MAPPINGS);
	if (health)
		json_object_set_new(after, "health", health);
	health = NULL;
	reply_json(r, before ? 200 : 201, after);
out:
	json_decref(before);
	json_decref(health);
	json_decref(checks);
	return MHD_YES;
}

static int del(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *before = mapping_json(db, id);

	if (!before)
		return reply_error(r, 404, "not_found", "no mapping %lld", (long long)id);
	return reply_deleted(r, db, "DELETE FROM main.mappings WHERE id = ?1 AND " ORG_SCOPED, id, "mapping.delete",
			     "mapping", before, TOPIC_MAPPINGS);
}

/* All mappings in one query (there may be thousands). */
static int list(struct req *r, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *items = json_array();

	if (sqlite3_prepare_v2(db, MAPPING_SELECT "ORDER BY s.id", -1, &st, NULL) != SQLITE_OK) {
		json_decref(items);
		return reply_db_error(r, db);
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(items, row_json(st));
	sqlite3_finalize(st);
	return reply_json(r, 200, json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}

static const struct crud mappings = {
    .noun = "mapping", .list = list, .get = mapping_json, .save = save, .del = del, .put = 1};

int res_mappings(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;

	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (nseg == 1 && strcmp(seg[0], "export") == 0)
		return get ? res_mappings_export(r, db) : reply_error(r, 405, "method_not_allowed", "use GET");
	if (nseg == 1 && strcmp(seg[0], "import") == 0)
		return strcmp(r->method, "POST") == 0 ? res_mappings_import(r, db)
						      : reply_error(r, 405, "method_not_allowed", "use POST");
	return crud_route(r, db, &mappings, seg, nseg);
}
