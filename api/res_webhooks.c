/* res_webhooks.c - /api/v1/webhooks (issue 20; admins of the organisation): alert receivers.
 * {name, url, events: [types], secret (write-only; has_secret shows whether one is set),
 * enabled}; each with its last delivery (last_attempt_at, last_status, last_error,
 * last_success_at, deliveries, failures). POST /webhooks/{id}/test sends a "test" event at once
 * and answers what the receiver said. Every change is audited (without the secret). */
#include "resources.h"

#include "db.h"
#include "log.h"
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct jfield fields[] = {
    {"name", J_NAME, 1, 1, 64},	  {"url", J_STR, 1, 10, 2048},	{"events", J_ARRAY, 0, 1, 16},
    {"secret", J_STR, 0, 0, 256}, {"enabled", J_BOOL, 0, 0, 1},
};
#define NFIELDS		 (sizeof(fields) / sizeof(fields[0]))
#define WEBHOOKS_PER_ORG 16

static json_t *webhook_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL, *ev;

	if (sqlite3_prepare_v2(
		db,
		"SELECT id, name, url, events, secret != '', enabled, created_at, updated_at, "
		"last_attempt_at, last_success_at, last_status, last_error, deliveries, failures, org_id "
		"FROM webhooks WHERE id = ?1",
		-1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		char *evs = strdup((const char *)sqlite3_column_text(st, 3)), *save = NULL;
		ev = json_array();
		for (char *t = evs ? strtok_r(evs, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(ev, json_string(t));
		free(evs);
		j = json_pack(
		    "{s:I, s:s, s:s, s:o, s:b, s:b, s:I, s:I, s:o, s:o, s:o, s:s, s:I, s:I, s:I}", "id",
		    (json_int_t)sqlite3_column_int64(st, 0), "name", sqlite3_column_text(st, 1), "url",
		    sqlite3_column_text(st, 2), "events", ev, "has_secret", sqlite3_column_int(st, 4), "enabled",
		    sqlite3_column_int(st, 5), "created_at", (json_int_t)sqlite3_column_int64(st, 6), "updated_at",
		    (json_int_t)sqlite3_column_int64(st, 7), "last_attempt_at", json_nullable_int(st, 8),
		    "last_success_at", json_nullable_int(st, 9), "last_status", json_nullable_int(st, 10), "last_error",
		    sqlite3_column_text(st, 11), "deliveries", (json_int_t)sqlite3_column_int64(st, 12), "failures",
		    (json_int_t)sqlite3_column_int64(st, 13), "org_id", (json_int_t)sqlite3_column_int64(st, 14));
	}
	sqlite3_finalize(st);
	return j;
}

/* events as stored: known types, each once, comma-joined; 0, or -1 with err. */
static int events_text(json_t *events, char *out, size_t size, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(events, i, v)
	{
		const char *t = json_string_value(v);
		int known = 0;
		for (int k = 0; t && webhook_types[k]; k++)
			known |= strcmp(t, webhook_types[k]) == 0;
		if (!known) {
			snprintf(err, errlen, "events: '%.40s' is not an event type (%s, %s, %s, %s, %s)",
				 t ? t : "(not a string)", webhook_types[0], webhook_types[1], webhook_types[2],
				 webhook_types[3], webhook_types[4]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(events, j)), t) == 0) {
				snprintf(err, errlen, "events: '%s' is listed twice", t);
				return -1;
			}
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", t);
	}
	return 0;
}

static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	char err[256], evs[512] = "", oid[24];
	json_t *before = NULL, *after, *v, *shown;
	sqlite3_stmt *st = NULL;
	int rc, url_moves = 0;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, fields, NFIELDS, partial, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if ((v = json_object_get(r->body, "url")) && webhook_url_check(json_string_value(v), err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if ((v = json_object_get(r->body, "events")) && events_text(v, evs, sizeof(evs), err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (!v && !partial) /* all of them, by default */
		for (int k = 0; webhook_types[k]; k++)
			snprintf(evs + strlen(evs), sizeof(evs) - strlen(evs), "%s%s", k ? "," : "", webhook_types[k]);
	if (id > 0 && !(before = webhook_json(db, id)))
		return reply_error(r, 404, "not_found", "no webhook %lld", (long long)id);
	/* under the write lock: the count (two creates at once cannot both take the last place) and
	 * the webhook as read (whether its URL moves, its secret never following, was judged on it) */
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (id < 0 &&
	    db_query_int(db, "SELECT count(*) FROM main.webhooks WHERE org_id = " ORG_OWNER, 0) >= WEBHOOKS_PER_ORG) {
		db_rollback(db);
		return reply_error(r, 409, "conflict", "an organisation has at most %d webhooks", WEBHOOKS_PER_ORG);
	}
	if (id > 0) { /* (not the delivery counters: the delivery thread writes them after each attempt) */
		static const char *const set[] = {"name", "url", "events", "has_secret", "enabled"};
		json_t *now = webhook_json(db, id);

		rc = now ? 0 : 404;
		for (size_t k = 0; !rc && k < sizeof(set) / sizeof(set[0]); k++) {
			const json_t *a = json_object_get(now, set[k]), *b = json_object_get(before, set[k]);
			if (a != b && !json_equal(a, b)) /* (both absent: json_equal says no) */
				rc = 409;
		}
		json_decref(now);
		if (rc) {
			db_rollback(db);
			json_decref(before);
			return rc == 404 ? reply_error(r, 404, "not_found", "no webhook %lld", (long long)id)
					 : reply_error(r, 409, "conflict",
						       "webhook %lld was changed by another request meanwhile; nothing "
						       "was stored: read it again and retry",
						       (long long)id);
		}
	}
	/* a secret never follows a webhook to another URL (as a proxy's credentials do not) */
	url_moves = before && (v = json_object_get(r->body, "url")) &&
		    strcmp(json_string_value(v), json_string_value(json_object_get(before, "url"))) != 0 &&
		    !json_object_get(r->body, "secret");
	if (id < 0)
		rc = sqlite3_prepare_v2(db,
					"INSERT INTO main.webhooks (name, url, events, secret, enabled, org_id) VALUES "
					"(?1, ?2, ?3, coalesce(?4, ''), coalesce(?5, 1), " ORG_OWNER ")",
					-1, &st, NULL);
	else
		rc = sqlite3_prepare_v2(
		    db,
		    partial
			? "UPDATE main.webhooks SET name = coalesce(?1, name), url = coalesce(?2, url), events = "
			  "coalesce(?3, events), secret = coalesce(?4, secret), enabled = coalesce(?5, enabled), "
			  "updated_at = unixepoch() WHERE id = ?6 AND " ORG_SCOPED
			: "UPDATE main.webhooks SET name = ?1, url = ?2, events = ?3, secret = coalesce(?4, secret), "
			  "enabled = coalesce(?5, 1), updated_at = unixepoch() WHERE id = ?6 AND " ORG_SCOPED,
		    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return MHD_YES;
	}
	if ((v = json_object_get(r->body, "name")))
		sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_TRANSIENT);
	if ((v = json_object_get(r->body, "url")))
		sqlite3_bind_text(st, 2, json_string_value(v), -1, SQLITE_TRANSIENT);
	if (evs[0])
		sqlite3_bind_text(st, 3, evs, -1, SQLITE_TRANSIENT);
	if ((v = json_object_get(r->body, "secret")))
		sqlite3_bind_text(st, 4, json_string_value(v), -1, SQLITE_TRANSIENT);
	else if (url_moves)
		sqlite3_bind_text(st, 4, "", -1, SQLITE_STATIC);
	if ((v = json_object_get(r->body, "enabled")))
		sqlite3_bind_int(st, 5, json_is_true(v));
	if (id > 0)
		sqlite3_bind_int64(st, 6, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
			reply_error(r, 409, "conflict", "a webhook with this name exists");
		else
			reply_error(r, 400, "bad_request", "invalid webhook: %s", sqlite3_errmsg(db));
		db_rollback(db);
		json_decref(before);
		return MHD_YES;
	}
	if (id < 0)
		id = sqlite3_last_insert_rowid(db);
	if (db_commit(db) < 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	after = webhook_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	shown = json_deep_copy(after); /* a new secret shows in the audit as a change, never itself */
	if (json_object_get(r->body, "secret") || url_moves)
		json_object_set_new(shown, "secret_changed", json_true());
	api_audit(r, before ? "webhook.update" : "webhook.create", "webhook", oid, before, shown, "ok");
	json_decref(shown);
	json_decref(before);
	return reply_json(r, before ? 200 : 201, after);
}

static int del(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *before = webhook_json(db, id);

	if (!before)
		return reply_error(r, 404, "not_found", "no webhook %lld", (long long)id);
	return reply_deleted(r, db, "DELETE FROM main.webhooks WHERE id = ?1 AND " ORG_SCOPED, id, "webhook.delete",
			     "webhook", before, 0);
}

/* POST /webhooks/{id}/test: a "test" event now, whatever its events and enabled say. */
static int test(struct req *r, sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	char url[2049] = "", *secret = NULL, err[400], oid[24];
	long status = 0, ms = 0;
	int ok;
	json_t *data, *res;

	if (sqlite3_prepare_v2(db, "SELECT url, secret FROM webhooks WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return reply_db_error(r, db);
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(url, sizeof(url), "%s", (const char *)sqlite3_column_text(st, 0));
		secret = strdup((const char *)sqlite3_column_text(st, 1)); /* whole: it signs */
	}
	sqlite3_finalize(st);
	if (!secret)
		return reply_error(r, 404, "not_found", "no webhook %lld", (long long)id);
	data = json_pack("{s:I, s:s}", "webhook_id", (json_int_t)id, "message", "a test event from pgw");
	ok = webhook_deliver_now(db, r->api->cfg, id, url, secret, "test", data, &status, err, sizeof(err), &ms);
	json_decref(data);
	explicit_bzero(secret, strlen(secret));
	free(secret);
	res = json_pack("{s:b, s:o, s:I}", "delivered", ok, "status", status ? json_integer(status) : json_null(),
			"duration_ms", (json_int_t)ms);
	if (!ok)
		json_object_set_new(res, "error", json_string(err));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "webhook.test", "webhook", oid, NULL, res, ok ? "ok" : "failed");
	return reply_json(r, 200, res);
}

static const struct crud webhooks = {.noun = "webhook",
				     .ids_sql = "SELECT id FROM webhooks ORDER BY id",
				     .get = webhook_json,
				     .save = save,
				     .del = del,
				     .put = 1};

int res_webhooks(struct req *r, const char *const *seg, int nseg)
{
	sqlite3 *db;
	int64_t id;
	int get = strcmp(r->method, "GET") == 0;

	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (get && strcmp(r->user.role, "admin") != 0) /* reading too: a URL may carry a token */
		return reply_error(r, 403, "forbidden", "webhooks are for admins");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (nseg == 2 && strcmp(seg[1], "test") == 0) {
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such webhook");
		return strcmp(r->method, "POST") == 0
			   ? test(r, db, id)
			   : reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	}
	return crud_route(r, db, &webhooks, seg, nseg);
}
