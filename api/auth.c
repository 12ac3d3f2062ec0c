/* auth.c - see auth.h. The token says who (sub) and carries the CSRF secret; the role and the
 * disabled flag are read from the DB on every request, so changes take effect at once. */
#include "auth.h"

#include "db.h"
#include "oidc.h"
#include "log.h"
#include "random.h"
#include "resources.h"
#include "password.h"
#include "throttle.h"
#include "token.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A valid Argon2id hash of a random password: verifying against it costs what a real verify
 * costs, so an unknown user name answers as slowly as a wrong password. */
static const char *const dummy_hash =
    "$argon2id$v=19$m=65536,t=3,p=1$HXxdV4upD+lt3rjATWtAQQ$J6hixq/cp341qoFxbyegARpGXzfqqfuOJN4QvGVdSu0";

static int load_user(struct req *r, const char *by, const char *val, char hash[PASSWORD_HASH_MAX], int *disabled)
{
	char sql[200];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = api_db(r->api);
	int found = 0;

	snprintf(sql, sizeof(sql),
		 "SELECT id, username, role, password_hash, disabled, token_gen, superadmin, sso_issuer IS NOT NULL "
		 "FROM users WHERE %s = ?1",
		 strcmp(by, "id") == 0 ? "id" : "username");
	if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, val, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		r->user.id = sqlite3_column_int64(st, 0);
		snprintf(r->user.name, sizeof(r->user.name), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(r->user.role, sizeof(r->user.role), "%s", (const char *)sqlite3_column_text(st, 2));
		if (hash)
			snprintf(hash, PASSWORD_HASH_MAX, "%s", (const char *)sqlite3_column_text(st, 3));
		*disabled = sqlite3_column_int(st, 4);
		r->user.gen = sqlite3_column_int64(st, 5);
		r->user.superadmin = sqlite3_column_int(st, 6);
		r->user.sso = sqlite3_column_int(st, 7);
		found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

static char *issue(struct req *r, long exp, const char *csrf)
{
	const struct pgw_config *cfg = r->api->cfg;

	return token_session_issue((const unsigned char *)cfg->jwt_secret, cfg->jwt_secret_len, r->user.id, r->user.gen,
				   csrf, (long)time(NULL), exp);
}

/* A new session for r->user: its token (malloc'd), CSRF secret, expiry and the cookie that
 * carries it. NULL when it cannot be made. */
static char *new_session(struct req *r, char csrf[65], long *exp, char *cookie, size_t size)
{
	char *tok;

	if (random_hex(csrf, 32) < 0)
		return NULL;
	*exp = (long)time(NULL) + AUTH_TTL_S;
	if (!(tok = issue(r, *exp, csrf)))
		return NULL;
	snprintf(cookie, size, AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", tok, AUTH_TTL_S,
		 api_https(r->api) ? "; Secure" : "");
	return tok;
}

int auth_sso_session(struct req *r, int64_t user_id, const char *clear_cookie, const char *location)
{
	char id[24], csrf[65], cookie[1200];
	int disabled = 0, ret;
	long exp;
	char *tok;

	snprintf(id, sizeof(id), "%lld", (long long)user_id);
	if (load_user(r, "id", id, NULL, &disabled) != 1 || disabled)
		return -1;
	if (!(tok = new_session(r, csrf, &exp, cookie, sizeof(cookie))))
		return -1;
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = cookie;
	r->extra_header[2] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[3] = clear_cookie;
	r->extra_header[4] = MHD_HTTP_HEADER_LOCATION;
	r->extra_header[5] = location;
	ret = reply_json(r, 303, json_pack("{s:s, s:s}", "location", location, "role", r->user.role));
	memset(r->extra_header, 0, sizeof(r->extra_header));
	explicit_bzero(tok, strlen(tok));
	free(tok);
	explicit_bzero(cookie, sizeof(cookie));
	(void)ret; /* queued (or the connection is gone): nothing more to send either way */
	return 0;
}

int auth_login(struct req *r)
{
	static const struct jfield f[] = {{"username", J_STR, 1, 1, 64}, {"password", J_STR, 1, 1, 256}};
	char err[256], hash[PASSWORD_HASH_MAX], csrf[65], cookie[1200], ukey[THROTTLE_KEY_MAX], akey[80], src[64],
	    gkey[THROTTLE_KEY_MAX], kkey[THROTTLE_KEY_MAX];
	struct throttle_rule rules[3] = {
	    THROTTLE_RULE(ukey, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
	    THROTTLE_RULE(akey, THROTTLE_ADDR_FAILS, 1, THROTTLE_MAX_WAIT_S),
	    THROTTLE_RULE(gkey, THROTTLE_ANY_FAILS, THROTTLE_ANY_FIRST_WAIT_S, THROTTLE_ANY_MAX_WAIT_S)};
	unsigned wait;
	int disabled = 0, found, ok, n_rules;
	const char *name, *pw, *trusted;
	char *tok;
	long exp;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, f, 2, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	name = json_string_value(json_object_get(r->body, "username"));
	pw = json_string_value(json_object_get(r->body, "password"));
	throttle_source(r->addr, src, sizeof(src));
	snprintf(ukey, sizeof(ukey), "u:%s@%s", name, src);
	snprintf(akey, sizeof(akey), "a:%s", src);
	snprintf(gkey, sizeof(gkey), "g:%s", name);
	snprintf(kkey, sizeof(kkey), "k:%s@%s", name, src);
	/* she signed in from here before: others' guesses (g:) do not hold her up, and her password
	 * check does not wait behind theirs */
	trusted = throttle_known(kkey) ? name : NULL;
	n_rules = trusted ? 2 : 3;
	/* checked and counted at once, before any password work (which also caps the CPU an
	 * attacker can spend): concurrent attempts cannot all slip under the limit; guesses spread
	 * over many sources add up (g:) unless she signed in from here before */
	if ((wait = throttle_attempt(rules, n_rules))) {
		log_warnx_id(r->id, "login throttled for '%s' from %s", name, r->addr);
		return reply_retry_after(r, 429, wait, "too_many_requests", "too many failed logins; try again in %u s",
					 wait);
	}
	if (auth_password_work_begin(r, trusted) < 0) { /* 503: too many at once; no attempt made */
		throttle_undo(rules, n_rules);
		return MHD_YES;
	}
	found = load_user(r, "username", name, hash, &disabled);
	if (found == 1 && r->user.sso) /* an SSO user's hash is a placeholder: it has no password here */
		found = 0;
	ok = password_verify(found == 1 ? hash : dummy_hash, pw) == 0 && found == 1 && !disabled;
	auth_password_work_end(trusted);
	if (!ok) {
		snprintf(r->user.name, sizeof(r->user.name), "%s", name);
		api_audit(r, "login", "user", name, NULL, NULL, "denied");
		log_info_id(r->id, "login failed for '%s' from %s", name, r->addr);
		memset(&r->user, 0, sizeof(r->user));
		return reply_error(r, 401, "unauthorized", "invalid user name or password");
	}
	/* local_login breakglass: told only to whoever knows the password, so that the one user
	 * who may still sign in with one cannot be found by trying names */
	if (!oidc_password_allowed(r, name))
		return MHD_YES; /* 403 sent */
	throttle_reset(ukey);
	/* this attempt from the source was a good one (a: and g: not reset: a good login gives
	 * others there, or a guesser elsewhere, no fresh start) */
	throttle_undo(rules + 1, n_rules - 1);
	throttle_remember(kkey);
	if (!(tok = new_session(r, csrf, &exp, cookie, sizeof(cookie))))
		return reply_error(r, 500, "internal", "cannot issue a token");
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = cookie;
	api_audit(r, "login", "user", r->user.name, NULL, NULL, "ok");
	{
		int ret = reply_json(r, 200,
				     json_pack("{s:s, s:I, s:s, s:s}", "token", tok, "expires_at", (json_int_t)exp,
					       "role", r->user.role, "csrf_token", csrf));
		explicit_bzero(tok, strlen(tok));
		free(tok);
		explicit_bzero(cookie, sizeof(cookie));
		return ret;
	}
}

/* Argon2id costs 64 MiB and ~100 ms each: at most AUTH_PASSWORD_WORK at once, one of them kept
 * for the trusted. (A lock, not an atomic add that is taken back: a flood's momentary adds would
 * turn away a trusted one now and then.) */
static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
static int password_work;
static char work_for[AUTH_PASSWORD_WORK][264]; /* whose trusted checks run (a user name; "": none) */

int auth_password_work_begin(struct req *r, const char *trusted)
{
	int ok, slot = -1;

	if (trusted && !*trusted)
		trusted = NULL; /* (no name: nothing to keep apart) */
	pthread_mutex_lock(&work_lock);
	ok = password_work < (trusted ? AUTH_PASSWORD_WORK : AUTH_PASSWORD_WORK - 1);
	for (int i = 0; ok && trusted && i < AUTH_PASSWORD_WORK; i++) {
		if (strcmp(work_for[i], trusted) == 0)
			ok = 0; /* one at a time a user: one account cannot hold the kept check */
		else if (slot < 0 && !work_for[i][0])
			slot = i;
	}
	if (ok) {
		password_work++;
		if (trusted && slot >= 0)
			snprintf(work_for[slot], sizeof(work_for[slot]), "%s", trusted);
	}
	pthread_mutex_unlock(&work_lock);
	if (!ok)
		reply_retry_after(r, 503, 1, "busy", "too many password checks at once; try again in a second");
	return ok ? 0 : -1;
}

void auth_password_work_end(const char *trusted)
{
	if (trusted && !*trusted)
		trusted = NULL;
	pthread_mutex_lock(&work_lock);
	password_work--;
	for (int i = 0; trusted && i < AUTH_PASSWORD_WORK; i++)
		if (strcmp(work_for[i], trusted) == 0) {
			work_for[i][0] = 0;
			break;
		}
	pthread_mutex_unlock(&work_lock);
}

int auth_end_sessions(sqlite3 *db, int64_t user_id)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(db, "UPDATE users SET token_gen = token_gen + 1 WHERE id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, user_id);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* 1 when sql, with ?1 and ?2 bound, has a row. */
static int exists2(sqlite3 *db, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, a);
		sqlite3_bind_int64(st, 2, b);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return yes;
}

int auth_member(sqlite3 *db, int64_t user_id, int64_t org, int admin_only)
{
	return exists2(db,
		       admin_only ? "SELECT 1 FROM main.user_orgs WHERE user_id = ?1 AND org_id = ?2 AND role = 'admin'"
				  : "SELECT 1 FROM main.user_orgs WHERE user_id = ?1 AND org_id = ?2",
		       user_id, org);
}

int auth_org_exists(sqlite3 *db, int64_t id)
{
	return db_query_int1(db, "SELECT count(*) FROM main.orgs WHERE id = ?1", id, 0) > 0;
}

int64_t auth_single_org(sqlite3 *db)
{
	return db_query_int(db, "SELECT CASE WHEN count(*) = 1 THEN max(id) ELSE 0 END FROM main.orgs", 0);
}

int auth_default_superadmin(sqlite3 *db, const char *role)
{
	return role && strcmp(role, "admin") == 0 && auth_single_org(db) > 0;
}

int auth_org_alive(sqlite3 *db, int64_t user_id, int64_t org)
{
	if (org == 0)
		return 1;
	if (db_query_int1(db, "SELECT superadmin FROM main.users WHERE id = ?1", user_id, 0) == 1)
		return 1;
	return org > 0 && auth_member(db, user_id, org, 0);
}

int auth_session_alive(sqlite3 *db, int64_t user_id, int64_t gen)
{
	sqlite3_stmt *st = NULL;
	int alive = 0;

	if (sqlite3_prepare_v2(db, "SELECT disabled = 0 AND token_gen = ?2 FROM users WHERE id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_int64(st, 2, gen);
		alive = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return alive;
}

int auth_logout(struct req *r)
{
	sqlite3 *db = api_db(r->api);

	if (r->user.key_id)
		return reply_error(r, 400, "bad_request",
				   "an API key has no session to end: revoke it (DELETE /api/v1/api-keys/%lld)",
				   (long long)r->user.key_id);
	/* every token of this user ends here, not only the cookie of this browser */
	if (!db || auth_end_sessions(db, r->user.id) < 0)
		return reply_error(r, 500, "internal", "cannot end the session");
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
	api_audit(r, "logout", "user", r->user.name, NULL, NULL, "ok");
	{ /* an SSO user's session at the provider ends too, where it lets the browser end it */
		char *url = oidc_end_session_url(r);
		if (url) {
			int ret = reply_json(r, 200, json_pack("{s:s}", "end_session_url", url));
			free(url);
			return ret;
		}
	}
	return reply_empty(r, 204);
}

int auth_me(struct req *r)
{
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	sqlite3 *db = api_db(r->api);
	sqlite3_stmt *st = NULL;
	json_t *orgs = json_array();

	/* the organisations the user may choose (X-Pgw-Org, the dashboard's switcher) and the
	 * role in each: every one for a superadmin, the key's own for an API key */
	if (db && sqlite3_prepare_v2(db,
				     "SELECT o.id, o.name, CASE WHEN ?2 THEN 'admin' ELSE uo.role END FROM main.orgs o "
				     "LEFT JOIN main.user_orgs uo ON uo.org_id = o.id AND uo.user_id = ?1 WHERE "
				     "CASE WHEN ?3 > 0 THEN o.id = ?4 ELSE ?2 OR uo.role IS NOT NULL END ORDER BY o.id",
				     -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, r->user.id);
		sqlite3_bind_int(st, 2, r->user.superadmin);
		sqlite3_bind_int64(st, 3, r->user.key_id);
		sqlite3_bind_int64(st, 4, r->org);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(
			    orgs, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
					    sqlite3_column_text(st, 1), "role",
					    r->user.key_id ? r->user.role : (const char *)sqlite3_column_text(st, 2)));
	}
	sqlite3_finalize(st);
	json_t *me = json_pack("{s:I, s:s, s:s, s:b, s:o, s:o, s:b}", "id", (json_int_t)r->user.id, "username",
			       r->user.name, "role", r->user.role, "superadmin", r->user.superadmin, "org",
			       r->org > 0 ? json_integer(r->org) : json_null(), "orgs", orgs, "sso", r->user.sso);
	/* a browser signed in by a redirect (SSO) learns its session's CSRF token here: only
	 * same-origin script reads this answer, and only with the SameSite=Strict cookie */
	if (r->user.via_cookie)
		json_object_set_new(me, "csrf_token", json_string(r->user.csrf));
	return reply_json(r, 200, me);
}

int auth_csrf(struct req *r)
{
	const char *hdr;

	if (!r->user.via_cookie)
		return 0; /* bearer tokens are not sent by browsers on their own */
	hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
	if (!hdr || !password_ct_equal(hdr, strlen(hdr), r->user.csrf, strlen(r->user.csrf))) {
		reply_error(r, 403, "forbidden",
			    "missing or wrong X-CSRF-Token for a change made with the session cookie");
		return -1;
	}
	return 0;
}

/* The organisation a request names: X-Pgw-Org, or ?org= on the event stream (an EventSource
 * cannot send headers); NULL when none. */
static const char *org_asked(struct req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Pgw-Org");

	if (!h && strcmp(r->url, "/api/v1/events") == 0)
		h = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "org");
	return h;
}

/* The organisation the request acts in, decided here once for every handler: X-Pgw-Org, else
 * the user's only one (a superadmin without the header: every organisation). One the user is
 * not a member of answers like one that does not exist. r->user.role becomes the role in it. */
static int resolve_org(struct req *r, int write)
{
	const char *h = org_asked(r);
	sqlite3 *db = api_db(r->api);
	sqlite3_stmt *st = NULL;
	int64_t want = 0, org = 0;
	char role[8] = "";
	int n = 0;

	if (h) {
		want = path_id(h);
		if (want < 0) {
			reply_error(r, 400, "bad_request", "X-Pgw-Org: an organisation id (a positive integer)");
			return -1;
		}
	}
	if (!db) {
		reply_error(r, 503, "unavailable", "database unavailable");
		return -1;
	}
	if (r->user.superadmin && !want && r->gateway_wide && write) { /* users, organisations, settings */
		r->org = 0;
		api_scope(0);
		return 0;
	}
	if (r->user.superadmin && !want) {
		/* every organisation; a write must say which one once there are several (with one,
		 * every install's until a second is made, it goes to that one: ORG_OWNER). Reads ask
		 * nothing more. */
		long long n_orgs = write ? db_query_int(db, "SELECT count(*) FROM main.orgs", -1) : 1;
		if (n_orgs < 0) {
			reply_error(r, 503, "unavailable", "database unavailable");
			return -1;
		}
		if (n_orgs > 1) {
			reply_error(r, 400, "org_required", "a change needs an organisation: X-Pgw-Org");
			return -1;
		}
		r->org = API_ORG_ALL;
		api_scope(r->org);
		return 0;
	}
	if (sqlite3_prepare_v2(db,
			       r->user.superadmin ? "SELECT id, 'admin' FROM main.orgs WHERE id = ?2"
						  : "SELECT org_id, role FROM main.user_orgs WHERE user_id = ?1 AND "
						    "(?2 = 0 OR org_id = ?2) ORDER BY org_id LIMIT 2",
			       -1, &st, NULL) != SQLITE_OK) {
		reply_error(r, 503, "unavailable", "database unavailable");
		return -1;
	}
	sqlite3_bind_int64(st, 1, r->user.id);
	sqlite3_bind_int64(st, 2, want);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n++ == 0) {
			org = sqlite3_column_int64(st, 0);
			snprintf(role, sizeof(role), "%s", (const char *)sqlite3_column_text(st, 1));
		}
	}
	sqlite3_finalize(st);
	if (n == 0 && want) {
		reply_error(r, 404, "not_found", "no organisation %lld", (long long)want);
		return -1;
	}
	if (r->gateway_wide && (n == 0 || n > 1)) { /* none chosen: no organisation's rows in reach */
		r->org = 0;
		api_scope(0);
		return 0;
	}
	if (n == 0) {
		reply_error(r, 403, "forbidden", "you belong to no organisation");
		return -1;
	}
	if (n > 1) {
		reply_error(r, 400, "org_required", "you belong to several organisations: choose one with X-Pgw-Org");
		return -1;
	}
	if (!r->user.superadmin) /* a superadmin acts as an admin in any organisation */
		snprintf(r->user.role, sizeof(r->user.role), "%s", role);
	r->org = org;
	api_scope(org);
	return 0;
}

int auth_require(struct req *r, int write)
{
	const struct pgw_config *cfg = r->api->cfg;
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *tok = NULL;
	struct session_claims c;
	char sub[24];
	int disabled = 0;

	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		tok = h + 7;
	} else {
		tok = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, AUTH_COOKIE);
		r->user.via_cookie = tok != NULL;
	}
	if (!tok || !*tok) {
		reply_error(r, 401, "unauthorized", "log in first (Authorization: Bearer, or the session cookie)");
		return -1;
	}
	if (!r->user.via_cookie && strncmp(tok, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) == 0) { /* a key for scripts */
		sqlite3 *db = api_db(r->api);
		if (!db || apikey_auth(r, db, tok) != 1) {
			memset(&r->user, 0, sizeof(r->user));
			reply_error(r, 401, "unauthorized", "invalid, expired or revoked API key");
			return -1;
		}
		r->authed = 1;
		api_scope(r->org);	  /* the key's own organisation (apikey_auth) */
		if ((h = org_asked(r))) { /* another than its own: as if it did not exist */
			int64_t want = path_id(h);
			if (want < 0) {
				reply_error(r, 400, "bad_request",
					    "X-Pgw-Org: an organisation id (a positive integer)");
				return -1;
			}
			if (want != r->org) {
				reply_error(r, 404, "not_found", "no organisation %lld", (long long)want);
				return -1;
			}
		}
		if (write && strcmp(r->user.role, "admin") != 0) {
			reply_error(r, 403, "forbidden", "the %s role can only read", r->user.role);
			return -1;
		}
		return 0;
	}
	if (token_session_verify(tok, (const unsigned char *)cfg->jwt_secret, cfg->jwt_secret_len, time(NULL), &c) <
	    0) {
		reply_error(r, 401, "unauthorized", "invalid or expired token");
		return -1;
	}
	memcpy(r->user.csrf, c.csrf, sizeof(r->user.csrf));
	snprintf(sub, sizeof(sub), "%lld", (long long)c.sub);
	explicit_bzero(&c.csrf, sizeof(c.csrf));
	if (load_user(r, "id", sub, NULL, &disabled) != 1 || disabled) {
		memset(&r->user, 0, sizeof(r->user));
		reply_error(r, 401, "unauthorized", "this user no longer exists or is disabled");
		return -1;
	}
	r->user.exp = c.exp;
	if (c.gen != r->user.gen) {
		memset(&r->user, 0, sizeof(r->user));
		reply_error(r, 401, "unauthorized",
			    "this session has ended (logged out, password changed or user disabled); log in again");
		return -1;
	}
	r->authed = 1;
	if (resolve_org(r, write) < 0)
		return -1;
	if (write && auth_csrf(r) < 0)
		return -1;
	if (write && strcmp(r->user.role, "admin") != 0) {
		reply_error(r, 403, "forbidden", "the %s role can only read", r->user.role);
		return -1;
	}
	return 0;
}
