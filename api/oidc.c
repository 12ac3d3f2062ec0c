/* oidc.c - see oidc.h. The provider is only ever reached with libcurl under OIDC_CONNECT_MS and
 * OIDC_TIMEOUT_MS (a hung provider costs one request thread five seconds, not the API), over
 * https or on loopback, with oidc_ca_file when set. A login begun here is remembered in memory
 * (state, nonce, PKCE verifier, the browser's cookie) and used once. */
#include "oidc.h"

#include "auth.h"
#include "db.h"
#include "hastate.h"
#include "log.h"
#include "random.h"
#include "oidc_jwt.h"
#include "password.h"
#include "resources.h"
#include "settings.h"
#include "throttle.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct conf {
	char issuer[SETTINGS_VALUE_MAX], client_id[SETTINGS_VALUE_MAX], secret_file[SETTINGS_VALUE_MAX],
	    redirect[SETTINGS_VALUE_MAX], scopes[SETTINGS_VALUE_MAX], claim[SETTINGS_VALUE_MAX],
	    map[SETTINGS_VALUE_MAX], name[SETTINGS_VALUE_MAX], ca[SETTINGS_VALUE_MAX], local[16],
	    breakglass[SETTINGS_VALUE_MAX];
};

struct pending {
	char state[44], nonce[44], verifier[44], browser[44];
	char source[64]; /* throttle_source() of who began it */
	char issuer[SETTINGS_VALUE_MAX], redirect[OIDC_URL_MAX];
	int64_t at_ms;
};

/* lock guards the state below and is never held across a call to the provider; fetch_lock lets
 * one JWKS fetch run at a time (the others then use what it got, or its failure). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER, fetch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct oidc_provider prov; /* the last discovery document read */
static struct oidc_keys keys;	  /* and the keys of its jwks_uri */
static char keys_uri[OIDC_URL_MAX];
static int64_t keys_at_ms;
/* the last JWKS fetch that failed: nobody asks that jwks_uri again within OIDC_KEYS_RETRY_MS */
static char failed_uri[OIDC_URL_MAX], failed_err[300];
static int64_t failed_at_ms;
static struct pending pend[OIDC_PENDING_MAX];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_load(struct req *r, sqlite3 *db, struct conf *c)
{
	const struct pgw_config *cfg = r->api->cfg;

	settings_str(db, cfg, "oidc_issuer", c->issuer, sizeof(c->issuer));
	settings_str(db, cfg, "oidc_client_id", c->client_id, sizeof(c->client_id));
	settings_str(db, cfg, "oidc_client_secret_file", c->secret_file, sizeof(c->secret_file));
	settings_str(db, cfg, "oidc_redirect_url", c->redirect, sizeof(c->redirect));
	settings_str(db, cfg, "oidc_scopes", c->scopes, sizeof(c->scopes));
	settings_str(db, cfg, "oidc_role_claim", c->claim, sizeof(c->claim));
	settings_str(db, cfg, "oidc_role_map", c->map, sizeof(c->map));
	settings_str(db, cfg, "oidc_provider_name", c->name, sizeof(c->name));
	settings_str(db, cfg, "oidc_ca_file", c->ca, sizeof(c->ca));
	settings_str(db, cfg, "local_login", c->local, sizeof(c->local));
	settings_str(db, cfg, "oidc_breakglass_user", c->breakglass, sizeof(c->breakglass));
}

static int configured(const struct conf *c)
{
	return c->issuer[0] && c->client_id[0];
}

/* 32 random bytes as base64url (43 characters). */
static int random_b64url(char out[44])
{
	unsigned char rnd[32], enc[48];

	if (random_bytes(rnd, sizeof(rnd)) < 0)
		return -1;
	EVP_EncodeBlock(enc, rnd, sizeof(rnd));
	for (int i = 0; i < 43; i++)
		out[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : (char)enc[i];
	out[43] = 0;
	return 0;
}

/* The PKCE S256 challenge of verifier: base64url(SHA-256(verifier)). */
static void challenge_of(const char *verifier, char out[44])
{
	unsigned char md[SHA256_DIGEST_LENGTH], enc[48];

	SHA256((const unsigned char *)verifier, strlen(verifier), md);
	EVP_EncodeBlock(enc, md, sizeof(md));
	for (int i = 0; i < 43; i++)
		out[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : (char)enc[i];
	out[43] = 0;
}

/* GET url (form NULL) or POST form to it, as client_id with secret (HTTP Basic; a public client
 * sends its id in the form): the JSON answer in *out and the status. 0, or -1 with err. */
static int call(const struct conf *c, const char *url, const char *form, const char *secret, json_t **out, long *status,
		char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct api_buf b = {.max = OIDC_ANSWER_MAX};
	struct curl_slist *hdrs = NULL;
	char *user = NULL, *pass = NULL;
	CURL *e;
	CURLcode rc;
	json_error_t je;

	*out = NULL;
	*status = 0;
	if (!oidc_url_ok(url)) { /* (the endpoints were checked so; a query is theirs to have) */
		snprintf(err, errlen, "the provider names %.200s, which is neither https nor on loopback", url);
		return -1;
	}
	if (!(e = curl_easy_init())) {
		snprintf(err, errlen, "libcurl failed");
		return -1;
	}
	hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)OIDC_CONNECT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)OIDC_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, api_buf_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pgw-api/" PGW_VERSION);
	if (c->ca[0]) { /* this CA file only, not the system's store besides */
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (form) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
		if (secret) { /* client_secret_basic: both form-encoded first (RFC 6749 2.3.1) */
			user = curl_easy_escape(e, c->client_id, 0);
			pass = curl_easy_escape(e, secret, 0);
			curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(e, CURLOPT_USERNAME, user ? user : "");
			curl_easy_setopt(e, CURLOPT_PASSWORD, pass ? pass : "");
		}
	}
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		curl_free(pass);
	}
	curl_free(user);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%.200s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		free(b.p);
		return -1;
	}
	*out = b.p ? json_loadb(b.p, b.n, JSON_REJECT_DUPLICATES, &je) : NULL;
	free(b.p);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(err, errlen, "%.200s answered %ld without a JSON object", url, *status);
		return -1;
	}
	return 0;
}

/* Read <issuer>/.well-known/openid-configuration into p (OpenID Connect Discovery 1.0 4). */
static int discover(const struct conf *c, struct oidc_provider *p, char *err, size_t errlen)
{
	char url[OIDC_URL_MAX];
	size_t l = strlen(c->issuer);
	json_t *doc;
	long status;
	int rc = -1;

	snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
		 (int)(l && c->issuer[l - 1] == '/' ? l - 1 : l), c->issuer);
	if (call(c, url, NULL, NULL, &doc, &status, err, errlen) < 0)
		return -1;
	memset(p, 0, sizeof(*p));
	if (status != 200)
		snprintf(err, errlen, "%.200s answered %ld", url, status);
	else
		rc = oidc_discovery_read(doc, c->issuer, p, err, errlen);
	json_decref(doc);
	return rc;
}

/* The provider of c: the one read last when it is that issuer's (use_cached), else read now. */
static int provider_get(const struct conf *c, int use_cached, struct oidc_provider *out, char *err, size_t errlen)
{
	pthread_mutex_lock(&lock);
	if (use_cached && strcmp(prov.issuer, c->issuer) == 0) {
		*out = prov;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);
	if (discover(c, out, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&lock);
	prov = *out;
	pthread_mutex_unlock(&lock);
	return 0;
}

/* Fetch the keys of jwks_uri (outside lock, one fetch at a time) and put them in place, unless
 * another fetch did so since fetched_before (then 0 at once) or one failed within
 * OIDC_KEYS_RETRY_MS (then -1 at once with its reason: callbacks queued behind a hung provider
 * do not each wait for a fetch of their own). 0 or -1 with err. */
static int keys_fetch(const struct conf *c, const char *jwks_uri, int64_t fetched_before, int rotation, char *err,
		      size_t errlen)
{
	json_t *doc = NULL;
	long status;
	char *text = NULL, ids[300] = "";
	struct oidc_keys k;
	size_t l = 0;
	int rc = -1;

	memset(&k, 0, sizeof(k));
	snprintf(err, errlen, "the keys at %.200s cannot be read", jwks_uri); /* (every failure says why) */
	pthread_mutex_lock(&fetch_lock);
	pthread_mutex_lock(&lock);
	if (keys.n && strcmp(keys_uri, jwks_uri) == 0 && keys_at_ms > fetched_before) { /* someone else just did */
		pthread_mutex_unlock(&lock);
		pthread_mutex_unlock(&fetch_lock);
		return 0;
	}
	if (failed_at_ms && strcmp(failed_uri, jwks_uri) == 0 && now_ms() - failed_at_ms < OIDC_KEYS_RETRY_MS) {
		snprintf(err, errlen, "%.200s (%lld s ago; asked again %d s after)", failed_err,
			 (long long)((now_ms() - failed_at_ms) / 1000), OIDC_KEYS_RETRY_MS / 1000);
		pthread_mutex_unlock(&lock);
		pthread_mutex_unlock(&fetch_lock);
		return -1;
	}
	pthread_mutex_unlock(&lock);
	if (call(c, jwks_uri, NULL, NULL, &doc, &status, err, errlen) < 0)
		goto out;
	if (status != 200) {
		snprintf(err, errlen, "%.200s answered %ld", jwks_uri, status);
		goto out;
	}
	if (!(text = json_dumps(doc, JSON_COMPACT)) || oidc_jwks_parse(text, strlen(text), &k, err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < k.n && l + 2 < sizeof(ids); i++)
		l += (size_t)snprintf(ids + l, sizeof(ids) - l, "%s%.60s", i ? " " : "", k.k[i].kid);
	log_info("sso: keys from %.200s%s: %s", jwks_uri, rotation ? " (a token named another key)" : "", ids);
	pthread_mutex_lock(&lock);
	oidc_keys_free(&keys);
	keys = k;
	memset(&k, 0, sizeof(k));
	snprintf(keys_uri, sizeof(keys_uri), "%s", jwks_uri);
	keys_at_ms = now_ms();
	failed_at_ms = 0;
	pthread_mutex_unlock(&lock);
	rc = 0;
out:
	if (rc < 0) {
		pthread_mutex_lock(&lock);
		snprintf(failed_uri, sizeof(failed_uri), "%s", jwks_uri);
		snprintf(failed_err, sizeof(failed_err), "%s", err);
		failed_at_ms = now_ms();
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_unlock(&fetch_lock);
	oidc_keys_free(&k);
	json_decref(doc);
	free(text);
	return rc;
}

/* Verify the token against the keys held (under lock: no network). -EAGAIN when there are none
 * of this provider's; *at: when they were fetched, *stale: over OIDC_KEYS_MAX_AGE_MS old. */
static int verify_held(const char *jwks_uri, const char *token, const struct oidc_expect *x, json_t **claims,
		       int64_t *at, int *stale, char *err, size_t errlen)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&lock);
	*at = keys_at_ms;
	*stale = now_ms() - keys_at_ms > OIDC_KEYS_MAX_AGE_MS;
	if (keys.n && strcmp(keys_uri, jwks_uri) == 0)
		rc = oidc_verify_id_token(token, &keys, x, claims, err, errlen);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Verify the ID token with the provider's keys: fetched when there are none or they are old
 * (the old ones still serve if the fetch fails), and once more when the token names a key id
 * they lack (the provider rotated). */
static int verify(const struct conf *c, const struct oidc_provider *p, const char *token, const char *nonce,
		  json_t **claims, char *err, size_t errlen)
{
	struct oidc_expect x = {.issuer = c->issuer,
				.client_id = c->client_id,
				.nonce = nonce,
				.now = (int64_t)time(NULL),
				.skew = OIDC_SKEW_S};
	char ferr[300];
	int64_t at;
	int stale, rc = verify_held(p->jwks, token, &x, claims, &at, &stale, err, errlen);

	if (rc == -EAGAIN || (rc != -ENOKEY && stale)) { /* none yet, or old: fetch, and keep the old on failure */
		if (keys_fetch(c, p->jwks, at, 0, ferr, sizeof(ferr)) < 0 && rc == -EAGAIN) {
			snprintf(err, errlen, "the provider's keys: %s", ferr);
			return -1;
		}
		if (rc == 0)
			return 0;
		json_decref(*claims);
		*claims = NULL;
		rc = verify_held(p->jwks, token, &x, claims, &at, &stale, err, errlen);
	}
	if (rc == -ENOKEY) { /* rotated at the provider: its keys once more */
		if (keys_fetch(c, p->jwks, at, 1, ferr, sizeof(ferr)) < 0) {
			snprintf(err, errlen, "the provider's keys: %s", ferr);
			return -1;
		}
		rc = verify_held(p->jwks, token, &x, claims, &at, &stale, err, errlen);
		if (rc == -ENOKEY)
			snprintf(err, errlen, "the token is signed with a key the provider does not publish");
	}
	return rc == 0 ? 0 : -1;
}

/* scheme://host of this request as the browser used it (Host), for the default redirect URL and
 * the return from the provider's logout. -1 when Host is missing or odd. */
static int origin_of(struct req *r, char *out, size_t size)
{
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	if (!paths_host_ok(host))
		return -1;
	snprintf(out, size, "%s://%s", api_https(r->api) ? "https" : "http", host);
	return 0;
}

static int redirect_of(struct req *r, const struct conf *c, char *out, size_t size)
{
	char origin[300];

	if (c->redirect[0]) {
		snprintf(out, size, "%s", c->redirect);
		return 0;
	}
	if (origin_of(r, origin, sizeof(origin)) < 0)
		return -1;
	snprintf(out, size, "%s/api/v1/auth/oidc/callback", origin);
	return 0;
}

/* Whether the refusal of a sign-in begun from source (who's "begun_from") goes into the audit log:
 * the first THROTTLE_SSO_AUDITED refusals of sign-ins begun there do, then one after each wait
 * (a minute, doubling up to THROTTLE_MAX_WAIT_S, from the last audited), so sign-ins begun and
 * answered wrong cannot fill the audit log; the rest are logged only. Nobody's sign-in is held
 * up by it. */
static int audit_room(const json_t *who)
{
	const char *src = json_string_value(json_object_get(who, "begun_from"));
	char key[80];
	struct throttle_rule rule =
	    THROTTLE_RULE(key, THROTTLE_SSO_AUDITED, THROTTLE_SSO_AUDIT_WAIT_S, THROTTLE_MAX_WAIT_S);

	snprintf(key, sizeof(key), "s:%s", src ? src : "?");
	return throttle_attempt(&rule, 1) == 0; /* (checked and counted at once, under one lock) */
}

/* who for the refusal of the sign-in pe: where it was begun (the address, an IPv6 /64) */
static json_t *begun(const struct pending *pe)
{
	return json_pack("{s:s}", "begun_from", pe->source);
}

/* The way back to the login page with code for the dashboard (which words it), and the reason
 * in the body, the log and the audit (action login.sso, result denied; audit_room). */
static int fail(struct req *r, const char *code, json_t *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define COOKIE_CLEAR OIDC_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
static int fail(struct req *r, const char *code, json_t *who, const char *fmt, ...)
{
	char msg[600], location[128];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx_id(r->id, "sso login from %s refused (%s): %s", r->addr, code, msg);
	/* audited once a sign-in this API began has come back (anyone may send the rest: they are
	 * only logged), within the room its beginning address has (audit_room) */
	if (who) {
		json_object_set_new(who, "error", json_string(code));
		json_object_set_new(who, "message", json_string(msg));
		/* (no_role took the user's roles and sessions: a change, always audited; it takes a
		 * sign-in at the provider of an account it knows) */
		if (strcmp(code, "no_role") == 0 || audit_room(who))
			api_audit(r, "login.sso", "user", r->user.name, NULL, who, "denied");
		else
			log_warnx_id(r->id, "sso: not audited: more than %d refused sign-ins begun from %s lately",
				     THROTTLE_SSO_AUDITED, json_string_value(json_object_get(who, "begun_from")));
		json_decref(who);
	}
	snprintf(location, sizeof(location), "/?sso_error=%s", code);
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = COOKIE_CLEAR;
	r->extra_header[2] = MHD_HTTP_HEADER_LOCATION;
	r->extra_header[3] = location;
	ret = reply_error(r, 303, code, "%s", msg);
	memset(r->extra_header, 0, sizeof(r->extra_header));
	return ret;
}

/* Under the lock: a free (or expired) slot, or -1, and how many live sign-ins came from source. */
static int pending_scan(const char *source, int *same)
{
	int64_t now = now_ms();
	int slot = -1;

	*same = 0;
	for (int i = 0; i < OIDC_PENDING_MAX; i++) {
		int live = pend[i].state[0] && now - pend[i].at_ms <= OIDC_PENDING_MS;
		if (!live && slot < 0)
			slot = i;
		*same += live && strcmp(pend[i].source, source) == 0;
	}
	return slot;
}

/* Remember a sign-in begun. -1 when OIDC_PENDING_MAX are under way, or OIDC_PENDING_PER_SOURCE
 * from p's source: a live one never makes room for another (nobody can push others' sign-ins
 * out). */
static int pending_put(const struct pending *p)
{
	int slot, same, ok;

	pthread_mutex_lock(&lock);
	slot = pending_scan(p->source, &same);
	ok = slot >= 0 && same < OIDC_PENDING_PER_SOURCE;
	if (ok)
		pend[slot] = *p;
	pthread_mutex_unlock(&lock);
	return ok ? 0 : -1;
}

/* 1 when source may begin another sign-in (asked before the provider is: a source that only
 * begins sign-ins soon stops costing calls to it). */
static int pending_room(const char *source)
{
	int slot, same;

	pthread_mutex_lock(&lock);
	slot = pending_scan(source, &same);
	pthread_mutex_unlock(&lock);
	return slot >= 0 && same < OIDC_PENDING_PER_SOURCE;
}

/* The login begun with state, taken (it is used once, whatever comes of it). -1 when none. */
static int pending_take(const char *state, struct pending *out)
{
	int found = -1;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < OIDC_PENDING_MAX; i++) {
		if (!pend[i].state[0] || !password_ct_equal(state, strlen(state), pend[i].state, strlen(pend[i].state)))
			continue;
		if (now_ms() - pend[i].at_ms <= OIDC_PENDING_MS) {
			*out = pend[i];
			found = 0;
		}
		explicit_bzero(&pend[i], sizeof(pend[i]));
		break;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

static int methods(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	struct conf c;

	if (!db)
		return reply_error(r, 503, "unavailable", "database unavailable");
	conf_load(r, db, &c);
	return reply_json(
	    r, 200,
	    json_pack("{s:o}", "oidc",
		      configured(&c) ? json_pack("{s:s, s:s}", "name", c.name, "login_url", "/api/v1/auth/oidc/login")
				     : json_null()));
}

/* Append &name=value (URL-encoded) to url. -1 when it does not fit. */
static int query_add(char *url, size_t size, const char *name, const char *value)
{
	char *v = curl_easy_escape(NULL, value, 0);
	size_t l = strlen(url);
	int n = v ? snprintf(url + l, size - l, "%c%s=%s", strchr(url, '?') ? '&' : '?', name, v) : -1;

	curl_free(v);
	return n < 0 || (size_t)n >= size - l ? -1 : 0;
}

static int b64url43(const char *s)
{
	return s && strlen(s) == 43 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

static int login(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	const char *had = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, OIDC_COOKIE);
	char err[400], challenge[44], location[4 * OIDC_URL_MAX], cookie[160];
	struct oidc_provider p;
	struct pending pe;
	struct conf c;
	struct ha_state hs;
	int ret, bad = 0;

	if (!db)
		return reply_error(r, 503, "unavailable", "database unavailable");
	conf_load(r, db, &c);
	if (!configured(&c))
		return fail(r, "not_configured", NULL,
			    "single sign-on is not configured (settings oidc_issuer and oidc_client_id)");
	if (r->api->cfg->ha_peer[0] && ha_state_read(db, &hs) == 0 && !ha_is_master(&hs))
		return fail(r, "ha_backup", NULL, "this gateway is the HA backup: sign in on the master at %s",
			    r->api->cfg->ha_peer);
	memset(&pe, 0, sizeof(pe));
	throttle_source(r->addr, pe.source, sizeof(pe.source));
	if (!pending_room(pe.source))
		return reply_retry_after(
		    r, 503, 60, "busy",
		    "too many sign-ins under way (from this address): finish one, or wait a minute");
	if (provider_get(&c, 0, &p, err, sizeof(err)) < 0)
		return fail(r, "provider_unavailable", NULL, "%s cannot be reached: %s", c.name, err);
	if (random_b64url(pe.state) < 0 || random_b64url(pe.nonce) < 0 || random_b64url(pe.verifier) < 0 ||
	    random_b64url(pe.browser) < 0)
		return reply_error(r, 500, "internal", "no randomness");
	if (b64url43(had)) /* this browser's binding already: its other tab's sign-in stays good */
		snprintf(pe.browser, sizeof(pe.browser), "%s", had);
	if (redirect_of(r, &c, pe.redirect, sizeof(pe.redirect)) < 0)
		return fail(r, "bad_request", NULL, "the request has no usable Host header: set oidc_redirect_url");
	snprintf(pe.issuer, sizeof(pe.issuer), "%s", c.issuer);
	pe.at_ms = now_ms();
	challenge_of(pe.verifier, challenge);
	snprintf(location, sizeof(location), "%s", p.auth);
	bad |= query_add(location, sizeof(location), "response_type", "code");
	bad |= query_add(location, sizeof(location), "client_id", c.client_id);
	bad |= query_add(location, sizeof(location), "redirect_uri", pe.redirect);
	bad |= query_add(location, sizeof(location), "scope", c.scopes);
	bad |= query_add(location, sizeof(location), "state", pe.state);
	bad |= query_add(location, sizeof(location), "nonce", pe.nonce);
	bad |= query_add(location, sizeof(location), "code_challenge", challenge);
	bad |= query_add(location, sizeof(location), "code_challenge_method", "S256");
	if (bad)
		return fail(r, "not_configured", NULL, "the authorization request would be longer than %zu bytes",
			    sizeof(location));
	if (pending_put(&pe) < 0)
		return reply_retry_after(
		    r, 503, 60, "busy",
		    "too many sign-ins under way (from this address): finish one, or wait a minute");
	/* Lax: the browser brings it back on the provider's top-level redirect to the callback;
	 * bound to this browser, so a state carried elsewhere is refused */
	snprintf(cookie, sizeof(cookie), OIDC_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s", pe.browser,
		 OIDC_PENDING_MS / 1000, api_https(r->api) ? "; Secure" : "");
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = cookie;
	r->extra_header[2] = MHD_HTTP_HEADER_LOCATION;
	r->extra_header[3] = location;
	ret = reply_json(r, 303, json_pack("{s:s}", "location", location));
	memset(r->extra_header, 0, sizeof(r->extra_header));
	explicit_bzero(&pe, sizeof(pe));
	return ret;
}

/* The client secret from oidc_client_secret_file (its first line); NULL for a public client (no
 * file set). -1 with why when the file is set and cannot be used: it must be a regular file only
 * its owner may read (0600 or 0400), of at most 1 KiB, and not one of this gateway's own secrets
 * (the JWT or HA secret, a PEM key): a superadmin can name any path, and the secret goes to the
 * provider the settings name. */
static int secret_read(struct req *r, const struct conf *c, char *out, size_t size, const char **secret,
		       const char **why)
{
	const struct pgw_config *cfg = r->api->cfg;
	struct stat st;
	int fd;
	ssize_t n;
	size_t len;

	*secret = NULL;
	*why = "cannot be opened";
	if (!c->secret_file[0])
		return 0;
	if ((fd = open(c->secret_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_size > 1024) {
		*why = "must be a regular file of at most 1 KiB that only its owner may read (mode 0600)";
		close(fd);
		return -1;
	}
	n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0) {
		*why = "is empty";
		explicit_bzero(out, size);
		return -1;
	}
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	len = strlen(out);
	if (!len || strncmp(out, "-----BEGIN", 10) == 0 ||
	    password_ct_equal(out, len, cfg->jwt_secret, cfg->jwt_secret_len) ||
	    (cfg->ha_secret_len && password_ct_equal(out, len, cfg->ha_secret, cfg->ha_secret_len))) {
		*why = len ? "holds one of this gateway's own secrets or keys, not a client secret" : "is empty";
		explicit_bzero(out, size);
		return -1;
	}
	*secret = out;
	return 0;
}

/* The roles claims grant under c->map: superadmin, and [{"id": org, "role": ...}] (the best
 * role in each organisation). 0 with none granted. */
static int grant(sqlite3 *db, const struct conf *c, json_t *claims, int *super, json_t **orgs)
{
	json_t *claim = json_object_get(claims, c->claim), *v;
	char group[SETTINGS_VALUE_MAX], role[SETTINGS_VALUE_MAX];
	const char *pos = c->map;
	int64_t single = auth_single_org(db);
	size_t i;
	int n = 0;

	*super = 0;
	*orgs = json_array();
	while (settings_rolemap_next(&pos, group, sizeof(group), role, sizeof(role)) > 0) {
		int has = json_is_string(claim) && strcmp(json_string_value(claim), group) == 0;
		json_array_foreach(json_is_array(claim) ? claim : NULL, i, v) has |=
		    json_is_string(v) && strcmp(json_string_value(v), group) == 0;
		if (!has)
			continue;
		if (strcmp(role, "superadmin") == 0) {
			*super = 1;
			n++;
			continue;
		}
		char *colon = strrchr(role, ':');
		const char *what = colon ? colon + 1 : role;
		int64_t org = single;
		if (colon) {
			*colon = 0;
			org = db_query_text_int(db, "SELECT id FROM main.orgs WHERE name = ?1", role, 0);
		}
		if (org <= 0) {
			log_warnx("sso: oidc_role_map grants %s%s%s, but %s", colon ? role : "", colon ? ":" : "", what,
				  colon ? "there is no such organisation"
					: "the gateway has several organisations: name one");
			continue;
		}
		if (!colon && strcmp(what, "admin") == 0) /* as a user made with role admin */
			*super |= auth_default_superadmin(db, what);
		json_t *m = NULL;
		json_array_foreach(*orgs, i, v) if (json_integer_value(json_object_get(v, "id")) == org) m = v;
		if (!m)
			json_array_append_new(*orgs, json_pack("{s:I, s:s}", "id", (json_int_t)org, "role", what));
		else if (strcmp(what, "admin") == 0)
			json_object_set_new(m, "role", json_string("admin"));
		n++;
	}
	return n;
}

/* A free user name for a new SSO user: preferred_username, else email, else "sso-" and a hash of
 * issuer and subject; "-2", "-3"... when taken. */
static void pick_username(sqlite3 *db, json_t *claims, const char *iss, const char *sub, char *out, size_t size)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-";
	const char *cands[2] = {json_string_value(json_object_get(claims, "preferred_username")),
				json_string_value(json_object_get(claims, "email"))};
	char base[57] = ""; /* and "-999" still fits a user name (64) */

	for (int i = 0; i < 2 && !base[0]; i++)
		if (cands[i] && *cands[i] && strlen(cands[i]) <= 56 && strspn(cands[i], ok) == strlen(cands[i]))
			snprintf(base, sizeof(base), "%s", cands[i]);
	if (!base[0]) {
		unsigned char md[SHA256_DIGEST_LENGTH];
		char both[800];
		snprintf(both, sizeof(both), "%s\n%s", iss, sub);
		SHA256((const unsigned char *)both, strlen(both), md);
		snprintf(base, sizeof(base), "sso-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4], md[5]);
	}
	snprintf(out, size, "%s", base);
	for (int k = 2;
	     k < 1000 && db_query_text_int(db, "SELECT count(*) FROM main.users WHERE username = ?1", out, 1) > 0; k++)
		snprintf(out, size, "%s-%d", base, k);
}

/* Find or make the user of (iss, sub) with these roles, in one transaction. The user id, 0 when
 * it is disabled here, -1 on a database error. */
static int64_t provision(sqlite3 *db, json_t *claims, const char *iss, const char *sub, int super, json_t *orgs,
			 int *created)
{
	sqlite3_stmt *st = NULL;
	int64_t id = -1;
	int disabled = 0;
	char name[72];

	*created = 0;
	if (db_begin(db) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT id, disabled FROM main.users WHERE sso_issuer = ?1 AND sso_subject = ?2", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, iss, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sub, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		disabled = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (id < 0) {
		pick_username(db, claims, iss, sub, name, sizeof(name));
		/* no password verifies against this placeholder, and password logins refuse SSO users */
		if (sqlite3_prepare_v2(
			db,
			"INSERT INTO main.users (username, password_hash, role, sso_issuer, sso_subject) "
			"VALUES (?1, '$argon2id$sso', 'viewer', ?2, ?3)",
			-1, &st, NULL) != SQLITE_OK)
			goto out;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, iss, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sub, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		id = sqlite3_last_insert_rowid(db);
		*created = 1;
	} else if (disabled) {
		db_rollback(db);
		return 0;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* the provider's word on the roles replaces whatever they were */
	if (sqlite3_prepare_v2(db, "UPDATE main.users SET superadmin = ?2, updated_at = unixepoch() WHERE id = ?1", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, super);
	if (sqlite3_step(st) != SQLITE_DONE || users_write_memberships(db, id, orgs, 1) < 0 || db_commit(db) < 0)
		goto out;
	sqlite3_finalize(st);
	return id;
out:
	sqlite3_finalize(st);
	db_rollback(db);
	return -1;
}

/* The user of (iss, sub) has lost every role at the provider: every session of theirs ends. */
/* The user of (iss, sub) has lost every role at the provider: its roles here go too (its API keys
 * follow its roles, so they stop as well) and every session of its ends, in one transaction.
 * 1 when there was such a user (name set), 0 when not, -1 when the database refused. */
static int revoke_user(sqlite3 *db, const char *iss, const char *sub, char *name, size_t size)
{
	sqlite3_stmt *st = NULL;
	json_t *none = json_array();
	int64_t id = 0;
	int rc = -1;

	name[0] = 0;
	if (db_begin(db) < 0) {
		json_decref(none);
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT id, username FROM main.users WHERE sso_issuer = ?1 AND sso_subject = ?2", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, iss, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, sub, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			id = sqlite3_column_int64(st, 0);
			snprintf(name, size, "%s", (const char *)sqlite3_column_text(st, 1));
		}
		rc = 0;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == 0 && id > 0) {
		rc = -1;
		if (sqlite3_prepare_v2(db,
				       "UPDATE main.users SET superadmin = 0, token_gen = token_gen + 1, updated_at = "
				       "unixepoch() WHERE id = ?1",
				       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_DONE && users_write_memberships(db, id, none, 1) == 0)
				rc = 1;
		}
		sqlite3_finalize(st);
	}
	json_decref(none);
	if (rc < 0 || db_commit(db) < 0) {
		db_rollback(db);
		name[0] = 0;
		return -1;
	}
	return rc;
}

/* printable ASCII of a provider's error text, at most 200 bytes */
static void clean(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; in && *in && n + 1 < size && n < 200; in++)
		out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[n] = 0;
}

static int callback(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	const char *state = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "state");
	const char *code = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "code");
	const char *perr = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "error");
	const char *piss = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "iss");
	const char *browser = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, OIDC_COOKIE);
	char err[600], form[4 * OIDC_URL_MAX], secretbuf[1025], e1[210], e2[210], name[72]; /* a 1 KiB file */
	const char *secret, *idt, *iss, *sub, *why;
	struct ha_state hs;
	int too_long;
	json_t *tok = NULL, *claims = NULL, *orgs = NULL, *who;
	struct oidc_provider p;
	struct pending pe;
	struct conf c;
	long status;
	int super, created, ret;
	int64_t id;

	if (!db)
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (!state || strlen(state) != 43 || pending_take(state, &pe) < 0)
		return fail(r, "bad_state", NULL,
			    "this sign-in is unknown, already used or older than %d minutes: sign in again",
			    OIDC_PENDING_MS / 60000);
	/* from here on a sign-in this API began has come back: every refusal is audited (begun()) */
	if (!browser || !password_ct_equal(browser, strlen(browser), pe.browser, strlen(pe.browser)))
		return fail(r, "bad_state", begun(&pe), "this sign-in was begun in another browser: sign in again");
	conf_load(r, db, &c);
	if (perr) {
		clean(perr, e1, sizeof(e1));
		clean(MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "error_description"), e2, sizeof(e2));
		return fail(r, "provider_refused", begun(&pe), "%s refused the sign-in: %s%s%s", c.name, e1,
			    e2[0] ? ": " : "", e2);
	}
	if (!configured(&c) || strcmp(c.issuer, pe.issuer) != 0)
		return fail(r, "not_configured", begun(&pe),
			    "single sign-on was changed during this sign-in: sign in again");
	if (piss && strcmp(piss, c.issuer) != 0) /* RFC 9207: an answer meant for another provider */
		return fail(r, "wrong_issuer", begun(&pe), "the answer comes from another provider than %s", c.issuer);
	if (!code || !*code || strlen(code) > 1024)
		return fail(r, "bad_request", begun(&pe), "the provider's answer has no code (or one over 1 KiB)");
	if (r->api->cfg->ha_peer[0] && ha_state_read(db, &hs) == 0 && !ha_is_master(&hs))
		return fail(r, "ha_backup", begun(&pe), "this gateway is the HA backup: sign in on the master at %s",
			    r->api->cfg->ha_peer);
	if (secret_read(r, &c, secretbuf, sizeof(secretbuf), &secret, &why) < 0)
		return fail(r, "not_configured", begun(&pe), "oidc_client_secret_file %s %s", c.secret_file, why);
	if (provider_get(&c, 1, &p, err, sizeof(err)) < 0) {
		explicit_bzero(secretbuf, sizeof(secretbuf));
		return fail(r, "provider_unavailable", begun(&pe), "%s cannot be reached: %s", c.name, err);
	}
	if (p.iss_param && !piss) { /* RFC 9207 2.4: a provider that says it sends iss always does */
		explicit_bzero(secretbuf, sizeof(secretbuf));
		return fail(r, "wrong_issuer", begun(&pe), "the answer lacks the iss that %s always sends", c.name);
	}
	{ /* the code for the tokens (OpenID Connect Core 3.1.3.1), with the PKCE verifier */
		char *ecode = curl_easy_escape(NULL, code, 0), *eredir = curl_easy_escape(NULL, pe.redirect, 0),
		     *eid = curl_easy_escape(NULL, c.client_id, 0);
		int n = snprintf(form, sizeof(form),
				 "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s%s%s",
				 ecode ? ecode : "", eredir ? eredir : "", pe.verifier,
				 secret ? "" : "&client_id=", secret ? "" : (eid ? eid : ""));
		too_long = !ecode || !eredir || !eid || n < 0 || (size_t)n >= sizeof(form);
		curl_free(ecode);
		curl_free(eredir);
		curl_free(eid);
	}
	ret = too_long ? -1 : call(&c, p.token, form, secret, &tok, &status, err, sizeof(err));
	if (too_long)
		snprintf(err, sizeof(err), "the token request would be longer than %zu bytes", sizeof(form));
	explicit_bzero(secretbuf, sizeof(secretbuf));
	explicit_bzero(form, sizeof(form));
	if (ret < 0 && !tok)
		return fail(r, "provider_unavailable", begun(&pe), "%s did not answer the code: %s", c.name, err);
	if (status != 200 || !(idt = json_string_value(json_object_get(tok, "id_token")))) {
		clean(json_string_value(json_object_get(tok, "error")), e1, sizeof(e1));
		clean(json_string_value(json_object_get(tok, "error_description")), e2, sizeof(e2));
		json_decref(tok);
		return fail(r, "token_refused", begun(&pe), "%s did not give an ID token for the code (%ld %s%s%s)",
			    c.name, status, e1, e2[0] ? ": " : "", e2);
	}
	ret = verify(&c, &p, idt, pe.nonce, &claims, err, sizeof(err));
	json_decref(tok);
	if (ret < 0)
		return fail(r, "bad_token", begun(&pe), "the ID token from %s is refused: %s", c.name, err);
	iss = json_string_value(json_object_get(claims, "iss"));
	sub = json_string_value(json_object_get(claims, "sub"));
	who = json_pack("{s:s, s:s, s:s}", "iss", iss, "sub", sub, "begun_from", pe.source);
	if (strlen(sub) > 255) {
		json_decref(claims);
		return fail(r, "bad_token", who, "the ID token's subject is longer than 255 bytes");
	}
	if (!grant(db, &c, claims, &super, &orgs)) {
		int had = revoke_user(db, iss, sub, name, sizeof(name));
		snprintf(r->user.name, sizeof(r->user.name), "%s", name);
		if (had > 0)
			api_notify(r, TOPIC_USERS);
		json_decref(claims);
		json_decref(orgs);
		if (had < 0)
			log_emit(LOG_LVL_ERROR, r->id, 0, "sso: cannot take the roles of %s (%s) away: %s", sub, iss,
				 sqlite3_errmsg(db));
		return fail(r, "no_role", who,
			    "your account at %s grants no role on this gateway (claim %s, setting oidc_role_map)%s",
			    c.name, c.claim,
			    had > 0   ? "; your roles and sessions here have ended"
			    : had < 0 ? " (busy: try again)"
				      : "");
	}
	id = provision(db, claims, iss, sub, super, orgs, &created);
	json_decref(claims);
	json_decref(orgs);
	if (id < 0) {
		json_decref(who);
		return reply_db_error(r, db);
	}
	if (id == 0 || auth_sso_session(r, id, COOKIE_CLEAR, "/?sso=ok") < 0)
		return fail(r, "disabled", who, "this user is disabled on the gateway");
	json_object_set_new(who, "role", json_string(r->user.role));
	json_object_set_new(who, "superadmin", json_boolean(r->user.superadmin));
	json_object_set_new(who, "created", json_boolean(created));
	api_audit(r, "login.sso", "user", r->user.name, NULL, who, "ok");
	json_decref(who);
	api_notify(r, TOPIC_USERS); /* made, or its roles rewritten from the provider's word */
	return MHD_YES;
}

int oidc_route(struct req *r, const char *const *seg, int nseg, int *ret)
{
	if (nseg == 1 && strcmp(seg[0], "methods") == 0) {
		*ret = strcmp(r->method, "GET")
			   ? reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method)
			   : methods(r);
		return 1;
	}
	if (nseg != 2 || strcmp(seg[0], "oidc") != 0 || (strcmp(seg[1], "login") && strcmp(seg[1], "callback")))
		return 0;
	if (strcmp(r->method, "GET") != 0)
		*ret = reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	else
		*ret = seg[1][0] == 'l' ? login(r) : callback(r);
	return 1;
}

int oidc_password_allowed(struct req *r, const char *username)
{
	sqlite3 *db = api_db(r->api);
	const struct pgw_config *cfg = r->api->cfg;
	struct conf c;

	if (!db)
		return 1; /* the password check that follows fails on its own */
	/* the two settings that decide; the rest of the provider's only to word a refusal */
	settings_str(db, cfg, "local_login", c.local, sizeof(c.local));
	settings_str(db, cfg, "oidc_breakglass_user", c.breakglass, sizeof(c.breakglass));
	if (strcmp(c.local, "breakglass") != 0 || (c.breakglass[0] && strcmp(username, c.breakglass) == 0))
		return 1;
	settings_str(db, cfg, "oidc_provider_name", c.name, sizeof(c.name));
	log_info_id(r->id, "password login of '%s' from %s refused: local_login is breakglass", username, r->addr);
	reply_error(r, 403, "password_login_off",
		    "password login is off on this gateway (local_login breakglass): sign in with %s", c.name);
	return 0;
}

char *oidc_end_session_url(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	char origin[300], back[320], url[4 * OIDC_URL_MAX], err[400];
	struct oidc_provider p;
	struct conf c;

	if (!r->user.sso || !db)
		return NULL;
	conf_load(r, db, &c);
	/* the cached discovery, fetched only when none is at hand (pgw-api restarted, or this node is
	 * the HA backup, which starts no sign-in): a logout that left the provider's session open
	 * without a word would be worse than its few seconds */
	if (!configured(&c) || provider_get(&c, 1, &p, err, sizeof(err)) < 0 || !p.end[0])
		return NULL;
	if (c.redirect[0]) { /* back to where the provider is told to send browsers, not to any Host */
		const char *h = strstr(c.redirect, "://");
		snprintf(origin, sizeof(origin), "%.*s", (int)(h ? h + 3 - c.redirect + strcspn(h + 3, "/") : 0),
			 c.redirect);
	} else if (origin_of(r, origin, sizeof(origin)) < 0) {
		return NULL;
	}
	snprintf(back, sizeof(back), "%s/", origin);
	snprintf(url, sizeof(url), "%s", p.end);
	query_add(url, sizeof(url), "client_id", c.client_id);
	query_add(url, sizeof(url), "post_logout_redirect_uri", back);
	return strdup(url);
}
