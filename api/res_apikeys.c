/* res_apikeys.c - /api/v1/api-keys (admins): keys for scripts. A key is "pgwk_<id>_<secret>",
 * shown once when it is made; only the SHA-256 of its 32-byte random secret is stored. It works
 * as a bearer token with its own role until it expires or is revoked; its last use is kept. It
 * acts for the admin who made it (signed in, not with a key): only while that user exists and
 * is enabled, and never with more than that user's role now. */
#include "resources.h"

#include "db.h"
#include "log.h"
#include "random.h"
#include "password.h"
#include "token.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sha256_hex(const char *s, char out[65])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)s, strlen(s), d);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static json_t *key_json(sqlite3_stmt *st)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:b}", "id", (json_int_t)sqlite3_column_int64(st, 0),
			 "name", sqlite3_column_text(st, 1), "role", sqlite3_column_text(st, 2), "created_by",
			 sqlite3_column_text(st, 3), "created_at", (json_int_t)sqlite3_column_int64(st, 4),
			 "expires_at", json_nullable_int(st, 5), "last_used_at", json_nullable_int(st, 6), "revoked_at",
			 json_nullable_int(st, 7), "superadmin", sqlite3_column_int(st, 8));
}

/* A key works while it is neither revoked nor expired and the admin who made it exists, is
 * enabled and still belongs to the key's organisation (or is a superadmin); it never acts with
 * more than that user's role there now (migrations 0011, 0014). */
#define KEY_ALIVE_SQL                                                                                                  \
	"JOIN main.users u ON u.id = k.created_by_id AND u.disabled = 0 WHERE k.id = ?1 AND k.revoked_at IS NULL AND " \
	"(k.expires_at IS NULL OR k.expires_at > unixepoch()) AND (u.superadmin = 1 OR EXISTS (SELECT 1 FROM "         \
	"main.user_orgs uo WHERE uo.user_id = u.id AND uo.org_id = coalesce(k.org_id, 1)))"
#define KEY_COLS "id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at, superadmin"

static int list(struct req *r, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *items = json_array();

	if (sqlite3_prepare_v2(db, "SELECT " KEY_COLS " FROM api_keys ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		json_decref(items);
		return reply_db_error(r, db);
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(items, key_json(st));
	sqlite3_finalize(st);
	return reply_json(r, 200, json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}

static int create_key(struct req *r, sqlite3 *db)
{
	static const struct jfield f[] = {{"name", J_NAME, 1, 1, 64},
					  {"role", J_STR, 1, 5, 6},
					  {"expires_at", J_INT, 0, 1, 253402300799},
					  {"superadmin", J_BOOL, 0, 0, 1}};
	char secret[65], hash[65], key[128], err[256];
	const char *name, *role;
	json_t *v, *out = NULL;
	sqlite3_stmt *st = NULL;
	int64_t id;
	int super;

	if (r->user.key_id) /* a key acts for the admin who made it: only a person makes one */
		return reply_error(r, 403, "forbidden", "API keys are made by a signed-in admin, not by a key");
	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, f, 4, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	name = json_string_value(json_object_get(r->body, "name"));
	role = json_string_value(json_object_get(r->body, "role"));
	if (strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0)
		return reply_error(r, 400, "bad_request", "'role' must be admin or viewer");
	/* a superadmin's key: asked for, by a superadmin, as an admin key; by default while the
	 * gateway has one organisation (as before organisations), else the organisation's only */
	if ((v = json_object_get(r->body, "superadmin")))
		super = json_is_true(v);
	else
		super = r->user.superadmin && auth_default_superadmin(db, role);
	if (super && (!r->user.superadmin || strcmp(role, "admin") != 0))
		return reply_error(r, 403, "forbidden",
				   "only a superadmin makes a superadmin key, and as an admin key");
	if ((v = json_object_get(r->body, "expires_at")) && json_integer_value(v) <= (json_int_t)time(NULL))
		return reply_error(r, 400, "bad_request", "'expires_at' is in the past");
	if (random_hex(secret, 32) < 0)
		return reply_error(r, 500, "internal", "no randomness");
	sha256_hex(secret, hash);
	if (sqlite3_prepare_v2(
		db,
		"INSERT INTO main.api_keys (name, role, secret_hash, created_by, expires_at, created_by_id, org_id, "
		"superadmin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, " ORG_OWNER ", ?7)",
		-1, &st, NULL) != SQLITE_OK) {
		explicit_bzero(secret, sizeof(secret));
		return reply_db_error(r, db);
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->user.name, -1, SQLITE_STATIC);
	if (v)
		sqlite3_bind_int64(st, 5, json_integer_value(v));
	sqlite3_bind_int64(st, 6, r->user.id);
	sqlite3_bind_int(st, 7, super);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		explicit_bzero(secret, sizeof(secret));
		return reply_error(r, 400, "bad_request", "invalid key: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	id = sqlite3_last_insert_rowid(db);
	snprintf(key, sizeof(key), APIKEY_PREFIX "%lld_%s", (long long)id, secret);
	explicit_bzero(secret, sizeof(secret));
	if (sqlite3_prepare_v2(db, "SELECT " KEY_COLS " FROM api_keys WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			out = key_json(st);
	}
	sqlite3_finalize(st);
	if (!out)
		return reply_db_error(r, db);
	api_audit(r, "apikey.create", "apikey", name, NULL, json_incref(out), "ok");
	json_decref(out);				   /* api_audit does not take it */
	json_object_set_new(out, "key", json_string(key)); /* the only time it is shown */
	explicit_bzero(key, sizeof(key));
	return reply_json(r, 201, out);
}

static int revoke_key(struct req *r, sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	char oid[24];
	int changed = 0;

	/* a superadmin's key (it acts on every organisation) is revoked by a superadmin only */
	if (sqlite3_prepare_v2(db,
			       "UPDATE main.api_keys SET revoked_at = unixepoch() WHERE id = ?1 AND revoked_at IS NULL "
			       "AND (superadmin = 0 OR ?2 = 1) AND " ORG_SCOPED,
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, r->user.superadmin);
		changed = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!changed && !r->user.superadmin &&
	    sqlite3_prepare_v2(db, "SELECT 1 FROM api_keys WHERE id = ?1 AND revoked_at IS NULL AND superadmin = 1", -1,
			       &st, NULL) == SQLITE_OK) {
		int theirs;

		sqlite3_bind_int64(st, 1, id);
		theirs = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
		if (theirs)
			return reply_error(r, 403, "forbidden",
					   "api key %lld is a superadmin's: only a superadmin revokes it",
					   (long long)id);
	}
	if (!changed)
		return reply_error(r, 404, "not_found", "no api key %lld that is not revoked", (long long)id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "apikey.revoke", "apikey", oid, NULL, NULL, "ok");
	return reply_empty(r, 204);
}

int res_apikeys(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;
	int64_t id;

	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "only admins manage API keys");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (nseg == 0 && get)
		return list(r, db);
	if (nseg == 0 && strcmp(r->method, "POST") == 0)
		return create_key(r, db);
	if (nseg == 1 && (id = path_id(seg[0])) > 0) {
		if (strcmp(r->method, "DELETE") == 0)
			return revoke_key(r, db, id);
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	}
	if (nseg == 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	return reply_error(r, 404, "not_found", "no such resource");
}

int apikey_auth(struct req *r, sqlite3 *db, const char *token)
{
	char hash[65];
	const char *secret;
	sqlite3_stmt *st = NULL;
	int64_t id;
	int ok = 0, touch = 0, rc = token_apikey_split(token, &id, &secret);

	if (rc != 1)
		return rc;
	sha256_hex(secret, hash);
	if (sqlite3_prepare_v2(
		db,
		"SELECT k.name, CASE WHEN k.role = 'admin' AND (u.superadmin = 1 OR (SELECT role FROM main.user_orgs "
		"uo "
		"WHERE uo.user_id = u.id AND uo.org_id = coalesce(k.org_id, 1)) = 'admin') THEN 'admin' ELSE 'viewer' "
		"END, "
		"k.secret_hash, coalesce(k.last_used_at, 0) < unixepoch() - 60, coalesce(k.org_id, 1), "
		"k.role = 'admin' AND k.superadmin = 1 AND u.superadmin = 1 FROM "
		"main.api_keys k " KEY_ALIVE_SQL,
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW &&
		    password_ct_equal(hash, 64, (const char *)sqlite3_column_text(st, 2), 64)) {
			snprintf(r->user.name, sizeof(r->user.name), "key:%s",
				 (const char *)sqlite3_column_text(st, 0));
			snprintf(r->user.role, sizeof(r->user.role), "%s", (const char *)sqlite3_column_text(st, 1));
			r->user.key_id = id;
			r->org = sqlite3_column_int64(st, 4);
			r->user.superadmin = sqlite3_column_int(st, 5); /* made as a superadmin's key */
			touch = sqlite3_column_int(st, 3);
			ok = 1;
		}
	}
	sqlite3_finalize(st);
	explicit_bzero(hash, sizeof(hash));
	if (ok && touch) { /* last use, and an audit row, at most once a minute per key */
		char oid[24];
		if (sqlite3_prepare_v2(db, "UPDATE main.api_keys SET last_used_at = unixepoch() WHERE id = ?1", -1, &st,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_step(st);
		}
		sqlite3_finalize(st);
		snprintf(oid, sizeof(oid), "%lld", (long long)id);
		api_audit(r, "apikey.use", "apikey", oid, NULL, NULL, "ok");
	}
	return ok;
}

int apikey_alive(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int alive = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM main.api_keys k " KEY_ALIVE_SQL, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		alive = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return alive;
}
