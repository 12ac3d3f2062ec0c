/* oidc.c - see oidc.h. The provider is only ever reached with libcurl under OIDC_CONNECT_MS and
 * OIDC_TIMEOUT_MS (a hung provider costs one request thread five seconds, not the API), over
 * https or on loopback, with oidc_ca_file when set. A login begun here is remembered in memory
 * (state, nonce, PKCE verifier, the browser's cookie) and used once. */
#include "oidc.h"

#include "auth.h"
#include "db.h"
#include "hastate.h"
#include "log.h"
#include "oidc_jwt.h"
#include "password.h"
#include "resources.h"
#include "settings.h"

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
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX 1024

struct conf {
	char issuer[SETTINGS_VALUE_MAX], client_id[SETTINGS_VALUE_MAX], secret_file[SETTINGS_VALUE_MAX],
	    redirect[SETTINGS_VALUE_MAX], scopes[SETTINGS_VALUE_MAX], claim[SETTINGS_VALUE_MAX],
	    map[SETTINGS_VALUE_MAX], name[SETTINGS_VALUE_MAX], ca[SETTINGS_VALUE_MAX], local[16],
	    breakglass[SETTINGS_VALUE_MAX];
};

struct provider {
	char issuer[SETTINGS_VALUE_MAX];
	char auth[URL_MAX], token[URL_MAX], jwks[URL_MAX], end[URL_MAX];
};

struct pending {
	char state[44], nonce[44], verifier[44], browser[44];
	char issuer[SETTINGS_VALUE_MAX], redirect[URL_MAX];
	int64_t at_ms;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* all of the below */
static struct provider prov;				 /* the last discovery document read */
static struct oidc_keys keys;				 /* and the keys of its jwks_uri */
static char keys_uri[URL_MAX];
static int64_t keys_at_ms;
static struct pending pend[OIDC_PENDING_MAX];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
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

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
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

struct buf {
	char *p;
	size_t n;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->n + n > OIDC_ANSWER_MAX || !(p = realloc(b->p, b->n + n + 1)))
		return 0;
	memcpy(p + b->n, data, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* GET url (form NULL) or POST form to it, as client_id with secret (HTTP Basic; a public client
 * sends its id in the form): the JSON answer in *out and the status. 0, or -1 with err. */
static int call(const struct conf *c, const char *url, const char *form, const char *secret, json_t **out, long *status,
		char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct buf b = {NULL, 0};
	struct curl_slist *hdrs = NULL;
	char *user = NULL, *pass = NULL;
	CURL *e;
	CURLcode rc;
	json_error_t je;

	*out = NULL;
	*status = 0;
	if (!settings_url_ok(url, 0)) {
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
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pgw-api/" PGW_VERSION);
	if (c->ca[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
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

static int copy_url(json_t *doc, const char *name, char *out, size_t size, int required, char *err, size_t errlen)
{
	const char *v = json_string_value(json_object_get(doc, name));

	if (!v && !required) {
		out[0] = 0;
		return 0;
	}
	if (!v || strlen(v) >= size || !settings_url_ok(v, 1)) {
		snprintf(err, errlen, "the discovery document has no usable %s", name);
		return -1;
	}
	snprintf(out, size, "%s", v);
	return 0;
}

/* Read <issuer>/.well-known/openid-configuration into p (OpenID Connect Discovery 1.0 4). */
static int discover(const struct conf *c, struct provider *p, char *err, size_t errlen)
{
	char url[URL_MAX];
	size_t l = strlen(c->issuer);
	const char *iss;
	json_t *doc;
	long status;
	int rc = -1;

	snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
		 (int)(l && c->issuer[l - 1] == '/' ? l - 1 : l), c->issuer);
	if (call(c, url, NULL, NULL, &doc, &status, err, errlen) < 0)
		return -1;
	memset(p, 0, sizeof(*p));
	iss = json_string_value(json_object_get(doc, "issuer"));
	if (status != 200)
		snprintf(err, errlen, "%.200s answered %ld", url, status);
	else if (!iss || strcmp(iss, c->issuer) != 0) /* 4.3: exactly the configured one */
		snprintf(err, errlen, "the discovery document names issuer '%.200s', not oidc_issuer '%.200s'",
			 iss ? iss : "", c->issuer);
	else if (copy_url(doc, "authorization_endpoint", p->auth, sizeof(p->auth), 1, err, errlen) == 0 &&
		 copy_url(doc, "token_endpoint", p->token, sizeof(p->token), 1, err, errlen) == 0 &&
		 copy_url(doc, "jwks_uri", p->jwks, sizeof(p->jwks), 1, err, errlen) == 0 &&
		 copy_url(doc, "end_session_endpoint", p->end, sizeof(p->end), 0, err, errlen) == 0) {
		snprintf(p->issuer, sizeof(p->issuer), "%s", c->issuer);
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

/* The provider of c: the one read last when it is that issuer's (use_cached), else read now. */
static int provider_get(const struct conf *c, int use_cached, struct provider *out, char *err, size_t errlen)
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

/* Under lock: the keys of jwks_uri, fetched when there are none, they are another URI's, older
 * than OIDC_KEYS_MAX_AGE_MS, or force (a token named a key id they lack: rotation). */
static int keys_load(const struct conf *c, const char *jwks_uri, int force, char *err, size_t errlen)
{
	json_t *doc;
	long status;
	char *text;
	struct oidc_keys k;
	int rc;

	if (!force && keys.n && strcmp(keys_uri, jwks_uri) == 0 && now_ms() - keys_at_ms < OIDC_KEYS_MAX_AGE_MS)
		return 0;
	if (call(c, jwks_uri, NULL, NULL, &doc, &status, err, errlen) < 0)
		return -1;
	if (status != 200) {
		json_decref(doc);
		snprintf(err, errlen, "%.200s answered %ld", jwks_uri, status);
		return -1;
	}
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	memset(&k, 0, sizeof(k));
	rc = text ? oidc_jwks_parse(text, strlen(text), &k, err, errlen) : -1;
	free(text);
	if (rc < 0) {
		oidc_keys_free(&k);
		return -1;
	}
	{
		char ids[300] = "";
		size_t l = 0;
		for (size_t i = 0; i < k.n && l + 2 < sizeof(ids); i++)
			l += (size_t)snprintf(ids + l, sizeof(ids) - l, "%s%.60s", i ? " " : "", k.k[i].kid);
		log_info("sso: keys from %.200s%s: %s", jwks_uri, force ? " (a token named another key)" : "", ids);
	}
	oidc_keys_free(&keys);
	keys = k;
	snprintf(keys_uri, sizeof(keys_uri), "%s", jwks_uri);
	keys_at_ms = now_ms();
	return 0;
}

/* Verify the ID token with the provider's keys, fetching them again once for an unknown key id. */
static int verify(const struct conf *c, const struct provider *p, const char *token, const char *nonce, json_t **claims,
		  char *err, size_t errlen)
{
	struct oidc_expect x = {.issuer = c->issuer,
				.client_id = c->client_id,
				.nonce = nonce,
				.now = (int64_t)time(NULL),
				.skew = OIDC_SKEW_S};
	int rc;

	pthread_mutex_lock(&lock);
	rc = keys_load(c, p->jwks, 0, err, errlen);
	if (rc == 0)
		rc = oidc_verify_id_token(token, &keys, &x, claims, err, errlen);
	if (rc == -ENOKEY) { /* rotated at the provider: its keys once more */
		rc = keys_load(c, p->jwks, 1, err, errlen);
		if (rc == 0)
			rc = oidc_verify_id_token(token, &keys, &x, claims, err, errlen);
		if (rc == -ENOKEY)
			snprintf(err, errlen, "the token is signed with a key the provider does not publish");
	}
	pthread_mutex_unlock(&lock);
	return rc == 0 ? 0 : -1;
}

/* scheme://host of this request as the browser used it (Host), for the default redirect URL and
 * the return from the provider's logout. -1 when Host is missing or odd. */
static int origin_of(struct req *r, char *out, size_t size)
{
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	if (!host || !*host || strlen(host) > 255 ||
	    strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") != strlen(host))
		return -1;
	snprintf(out, size, "%s://%s", r->api->cfg->tls_cert[0] ? "https" : "http", host);
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

/* The way back to the login page with code for the dashboard (which words it), and the reason
 * in the body, the log and the audit (action login.sso, result denied). */
static int fail(struct req *r, const char *code, json_t *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct req *r, const char *code, json_t *who, const char *fmt, ...)
{
	char msg[600], location[128];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx_id(r->id, "sso login from %s refused (%s): %s", r->addr, code, msg);
	json_object_set_new(who ? who : (who = json_object()), "error", json_string(code));
	json_object_set_new(who, "message", json_string(msg));
	api_audit(r, "login.sso", "user", r->user.name, NULL, who, "denied");
	json_decref(who);
	snprintf(location, sizeof(location), "/?sso_error=%s", code);
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = OIDC_COOKIE "=; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax; Max-Age=0";
	r->extra_header[2] = MHD_HTTP_HEADER_LOCATION;
	r->extra_header[3] = location;
	ret = reply_error(r, 303, code, "%s", msg);
	memset(r->extra_header, 0, sizeof(r->extra_header));
	return ret;
}

static void pending_put(const struct pending *p)
{
	size_t slot = 0;
	int64_t now = now_ms();

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < OIDC_PENDING_MAX; i++) {
		if (!pend[i].state[0] || now - pend[i].at_ms > OIDC_PENDING_MS) {
			slot = i;
			break;
		}
		if (pend[i].at_ms < pend[slot].at_ms) /* all in use: the oldest makes room */
			slot = i;
	}
	pend[slot] = *p;
	pthread_mutex_unlock(&lock);
}

/* The login begun with state, taken (it is used once, whatever comes of it). -1 when none. */
static int pending_take(const char *state, struct pending *out)
{
	int found = -1;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < OIDC_PENDING_MAX; i++) {
		if (!pend[i].state[0] || strcmp(pend[i].state, state) != 0)
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
	    json_pack("{s:s, s:o}", "password", c.local, "oidc",
		      configured(&c) ? json_pack("{s:s, s:s}", "name", c.name, "login_url", "/api/v1/auth/oidc/login")
				     : json_null()));
}

static void query_add(char *url, size_t size, const char *name, const char *value)
{
	char *v = curl_easy_escape(NULL, value, 0);
	size_t l = strlen(url);

	snprintf(url + l, size - l, "%c%s=%s", strchr(url, '?') ? '&' : '?', name, v ? v : "");
	curl_free(v);
}

static int login(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	char err[400], challenge[44], location[4 * URL_MAX], cookie[160];
	struct provider p;
	struct pending pe;
	struct conf c;
	struct ha_state hs;
	int ret;

	if (!db)
		return reply_error(r, 503, "unavailable", "database unavailable");
	conf_load(r, db, &c);
	if (!configured(&c))
		return fail(r, "not_configured", NULL,
			    "single sign-on is not configured (settings oidc_issuer and oidc_client_id)");
	if (r->api->cfg->ha_peer[0] && ha_state_read(db, &hs) == 0 && !ha_is_master(&hs))
		return fail(r, "ha_backup", NULL, "this gateway is the HA backup: sign in on the master at %s",
			    r->api->cfg->ha_peer);
	if (provider_get(&c, 0, &p, err, sizeof(err)) < 0)
		return fail(r, "provider_unavailable", NULL, "%s cannot be reached: %s", c.name, err);
	memset(&pe, 0, sizeof(pe));
	if (random_b64url(pe.state) < 0 || random_b64url(pe.nonce) < 0 || random_b64url(pe.verifier) < 0 ||
	    random_b64url(pe.browser) < 0)
		return reply_error(r, 500, "internal", "no randomness");
	if (redirect_of(r, &c, pe.redirect, sizeof(pe.redirect)) < 0)
		return fail(r, "bad_request", NULL, "the request has no usable Host header: set oidc_redirect_url");
	snprintf(pe.issuer, sizeof(pe.issuer), "%s", c.issuer);
	pe.at_ms = now_ms();
	challenge_of(pe.verifier, challenge);
	snprintf(location, sizeof(location), "%s", p.auth);
	query_add(location, sizeof(location), "response_type", "code");
	query_add(location, sizeof(location), "client_id", c.client_id);
	query_add(location, sizeof(location), "redirect_uri", pe.redirect);
	query_add(location, sizeof(location), "scope", c.scopes);
	query_add(location, sizeof(location), "state", pe.state);
	query_add(location, sizeof(location), "nonce", pe.nonce);
	query_add(location, sizeof(location), "code_challenge", challenge);
	query_add(location, sizeof(location), "code_challenge_method", "S256");
	pending_put(&pe);
	/* Lax: the browser brings it back on the provider's top-level redirect to the callback;
	 * bound to this browser, so a state carried elsewhere is refused */
	snprintf(cookie, sizeof(cookie),
		 OIDC_COOKIE "=%s; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax; Max-Age=%d%s", pe.browser,
		 OIDC_PENDING_MS / 1000, r->api->cfg->tls_cert[0] ? "; Secure" : "");
	r->extra_header[0] = MHD_HTTP_HEADER_SET_COOKIE;
	r->extra_header[1] = cookie;
	r->extra_header[2] = MHD_HTTP_HEADER_LOCATION;
	r->extra_header[3] = location;
	ret = reply_json(r, 303, json_pack("{s:s}", "location", location));
	memset(r->extra_header, 0, sizeof(r->extra_header));
	explicit_bzero(&pe, sizeof(pe));
	return ret;
}

/* The client secret from oidc_client_secret_file (first line); NULL for a public client (no
 * file set). -1 when the file is set and cannot be read. */
static int secret_read(const struct conf *c, char *out, size_t size, const char **secret)
{
	int fd;
	ssize_t n;

	*secret = NULL;
	if (!c->secret_file[0])
		return 0;
	if ((fd = open(c->secret_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	if (!out[0])
		return -1;
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
static void end_sessions_of(sqlite3 *db, const char *iss, const char *sub, char *name, size_t size)
{
	sqlite3_stmt *st = NULL;

	name[0] = 0;
	if (sqlite3_prepare_v2(db, "SELECT id, username FROM main.users WHERE sso_issuer = ?1 AND sso_subject = ?2", -1,
			       &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, iss, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sub, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(name, size, "%s", (const char *)sqlite3_column_text(st, 1));
		auth_end_sessions(db, sqlite3_column_int64(st, 0));
	}
	sqlite3_finalize(st);
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
	char err[600], form[4 * URL_MAX], secretbuf[512], e1[210], e2[210], name[72];
	const char *secret, *idt, *iss, *sub;
	json_t *tok = NULL, *claims = NULL, *orgs = NULL, *who;
	struct provider p;
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
	if (!browser || !password_ct_equal(browser, strlen(browser), pe.browser, strlen(pe.browser)))
		return fail(r, "bad_state", NULL, "this sign-in was begun in another browser: sign in again");
	conf_load(r, db, &c);
	if (perr) {
		clean(perr, e1, sizeof(e1));
		clean(MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "error_description"), e2, sizeof(e2));
		return fail(r, "provider_refused", NULL, "%s refused the sign-in: %s%s%s", c.name, e1,
			    e2[0] ? ": " : "", e2);
	}
	if (!configured(&c) || strcmp(c.issuer, pe.issuer) != 0)
		return fail(r, "not_configured", NULL, "single sign-on was changed during this sign-in: sign in again");
	if (piss && strcmp(piss, c.issuer) != 0) /* RFC 9207: an answer meant for another provider */
		return fail(r, "wrong_issuer", NULL, "the answer comes from another provider than %s", c.issuer);
	if (!code || !*code || strlen(code) > 2048)
		return fail(r, "bad_request", NULL, "the provider's answer has no code");
	if (secret_read(&c, secretbuf, sizeof(secretbuf), &secret) < 0)
		return fail(r, "not_configured", NULL, "oidc_client_secret_file %s cannot be read", c.secret_file);
	if (provider_get(&c, 1, &p, err, sizeof(err)) < 0) {
		explicit_bzero(secretbuf, sizeof(secretbuf));
		return fail(r, "provider_unavailable", NULL, "%s cannot be reached: %s", c.name, err);
	}
	{ /* the code for the tokens (OpenID Connect Core 3.1.3.1), with the PKCE verifier */
		char *ecode = curl_easy_escape(NULL, code, 0), *eredir = curl_easy_escape(NULL, pe.redirect, 0),
		     *eid = curl_easy_escape(NULL, c.client_id, 0);
		snprintf(form, sizeof(form),
			 "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s%s%s",
			 ecode ? ecode : "", eredir ? eredir : "", pe.verifier,
			 secret ? "" : "&client_id=", secret ? "" : (eid ? eid : ""));
		curl_free(ecode);
		curl_free(eredir);
		curl_free(eid);
	}
	ret = call(&c, p.token, form, secret, &tok, &status, err, sizeof(err));
	explicit_bzero(secretbuf, sizeof(secretbuf));
	explicit_bzero(form, sizeof(form));
	if (ret < 0 && !tok)
		return fail(r, "provider_unavailable", NULL, "%s did not answer the code: %s", c.name, err);
	if (status != 200 || !(idt = json_string_value(json_object_get(tok, "id_token")))) {
		clean(json_string_value(json_object_get(tok, "error")), e1, sizeof(e1));
		clean(json_string_value(json_object_get(tok, "error_description")), e2, sizeof(e2));
		json_decref(tok);
		return fail(r, "token_refused", NULL, "%s did not give an ID token for the code (%ld %s%s%s)", c.name,
			    status, e1, e2[0] ? ": " : "", e2);
	}
	ret = verify(&c, &p, idt, pe.nonce, &claims, err, sizeof(err));
	json_decref(tok);
	if (ret < 0)
		return fail(r, "bad_token", NULL, "the ID token from %s is refused: %s", c.name, err);
	iss = json_string_value(json_object_get(claims, "iss"));
	sub = json_string_value(json_object_get(claims, "sub"));
	who = json_pack("{s:s, s:s}", "iss", iss, "sub", sub);
	if (strlen(sub) > 255) {
		json_decref(claims);
		return fail(r, "bad_token", who, "the ID token's subject is longer than 255 bytes");
	}
	if (!grant(db, &c, claims, &super, &orgs)) {
		end_sessions_of(db, iss, sub, name, sizeof(name));
		snprintf(r->user.name, sizeof(r->user.name), "%s", name);
		json_decref(claims);
		json_decref(orgs);
		return fail(r, "no_role", who,
			    "your account at %s grants no role on this gateway (claim %s, setting oidc_role_map)%s",
			    c.name, c.claim, name[0] ? "; your sessions here have ended" : "");
	}
	id = provision(db, claims, iss, sub, super, orgs, &created);
	json_decref(claims);
	json_decref(orgs);
	if (id < 0) {
		json_decref(who);
		return reply_db_error(r, db);
	}
	if (id == 0 ||
	    auth_sso_session(r, id, OIDC_COOKIE "=; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax; Max-Age=0",
			     "/?sso=ok") < 0)
		return fail(r, "disabled", who, "this user is disabled on the gateway");
	json_object_set_new(who, "role", json_string(r->user.role));
	json_object_set_new(who, "superadmin", json_boolean(r->user.superadmin));
	json_object_set_new(who, "created", json_boolean(created));
	api_audit(r, "login.sso", "user", r->user.name, NULL, who, "ok");
	json_decref(who);
	if (created)
		api_notify(r, TOPIC_USERS);
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
	struct conf c;

	if (!db)
		return 1; /* the password check that follows fails on its own */
	conf_load(r, db, &c);
	if (strcmp(c.local, "breakglass") != 0 || (c.breakglass[0] && strcmp(username, c.breakglass) == 0))
		return 1;
	log_info_id(r->id, "password login of '%s' from %s refused: local_login is breakglass", username, r->addr);
	reply_error(r, 403, "password_login_off",
		    "password login is off on this gateway (local_login breakglass): sign in with %s", c.name);
	return 0;
}

char *oidc_end_session_url(struct req *r)
{
	sqlite3 *db = api_db(r->api);
	char origin[300], back[320], url[4 * URL_MAX], err[400];
	struct provider p;
	struct conf c;

	if (!r->user.sso || !db)
		return NULL;
	conf_load(r, db, &c);
	if (!configured(&c) || provider_get(&c, 1, &p, err, sizeof(err)) < 0 || !p.end[0] ||
	    origin_of(r, origin, sizeof(origin)) < 0)
		return NULL;
	snprintf(back, sizeof(back), "%s/", origin);
	snprintf(url, sizeof(url), "%s", p.end);
	query_add(url, sizeof(url), "client_id", c.client_id);
	query_add(url, sizeof(url), "post_logout_redirect_uri", back);
	return strdup(url);
}
