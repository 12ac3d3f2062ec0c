/* ha.c - see ha.h. The backup asks the master "is there a newer configuration than mine
 * (origin, generation)?"; the master answers at once when there is, else holds the request up
 * to HA_HOLD_MS for a change, so a write on the master reaches the backup in well under a second
 * and an idle pair exchanges one small answer every few seconds (which is also how each side
 * knows the other is there). The answer is the whole configuration (a snapshot: proxies,
 * mappings, users, keys, organisations, settings, webhooks), applied as row differences in one
 * transaction, so an outage of any length is resumed by the next answer.
 *
 * Security: only PGW_HA_PEER's address may ask (besides the agent's lan_in rule). A request
 * carries t (unix time), n (a random nonce) and m = HMAC-SHA256(k_auth, t\nn\norigin\ngeneration),
 * checked in constant time within HA_SKEW_S; the answer is AES-256-GCM under k_enc with the
 * request's nonce as additional data, so it can be neither read on the LAN (it holds password
 * hashes and proxy credentials) nor forged, nor replayed to another request. Both keys are
 * HMAC-SHA256 of the shared secret (PGW_HA_SECRET_FILE) over a label. */
#include "ha.h"

#include "auth.h"
#include "hacrypt.h"
#include "hasnap.h"
#include "hastate.h"
#include "db.h"
#include "log.h"
#include "random.h"
#include "migrate.h"
#include "net.h"
#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HA_SKEW_S     60		 /* a request's time may differ this much from ours */
#define HA_POLL_MS    100		 /* the held request looks for a change this often */
#define HA_ANSWER_MAX (64 * 1024 * 1024) /* the largest configuration accepted */
static struct {
	struct api *api;
	pthread_t thread;
	int running;
	atomic_int stop;
} H;

static int run(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

/* ---- the master's side ---- */

static int same_ip(const char *a, const char *b)
{
	struct net_ip x, y;
	return net_ip_parse(a, &x) == 0 && net_ip_parse(b, &y) == 0 && memcmp(&x, &y, sizeof(x)) == 0;
}

/* X-Pgw-Ha: t=UNIX,n=32HEX,m=64HEX */
static int request_ok(struct req *r, const char *origin, long long gen, char nonce[33], const char **why)
{
	const struct pgw_config *cfg = r->api->cfg;
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Pgw-Ha");
	char t[24], mac[65], want[65];
	long long ts;

	*why = "no valid X-Pgw-Ha header";
	if (!h || ha_header_parse(h, t, nonce, mac, &ts) < 0)
		return 0;
	*why = "the request's time is more than 60 s off this node's clock (keep the pair's clocks in step: NTP)";
	if (llabs(ts - (long long)time(NULL)) > HA_SKEW_S)
		return 0;
	*why = "the request does not authenticate under this node's secret (the same PGW_HA_SECRET_FILE on both?)";
	ha_request_mac(cfg->ha_secret, cfg->ha_secret_len, t, nonce, origin, gen, want);
	return CRYPTO_memcmp(mac, want, 64) == 0;
}

static int sync_answer(struct req *r)
{
	const struct pgw_config *cfg = r->api->cfg;
	const char *origin = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "origin"),
		   *g = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "generation");
	char nonce[33], *text;
	const char *why = "";
	unsigned char *sealed;
	size_t len;
	long long gen;
	struct ha_state s;
	sqlite3 *db = api_db(r->api);
	json_t *snap;
	int ret;

	if (!cfg->ha_peer[0] || !same_ip(r->addr, cfg->ha_peer))
		return reply_error(r, 404, "not_found", "no such resource");
	if (!origin || strlen(origin) > 16 || strspn(origin, "0123456789abcdef") != strlen(origin) || !g ||
	    strspn(g, "0123456789") != strlen(g) || !*g || strlen(g) > 18)
		return reply_error(r, 400, "bad_request", "origin and generation are required");
	gen = atoll(g);
	if (!request_ok(r, origin, gen, nonce, &why)) {
		log_warnx("ha: a sync request from %s refused: %s", r->addr, why);
		return reply_error(r, 401, "unauthorized", "%s", why);
	}
	if (!db)
		return reply_error(r, 503, "unavailable", "database unavailable");
	for (int waited = 0;; waited += HA_POLL_MS) {
		if (ha_state_read(db, &s) < 0)
			return reply_error(r, 503, "unavailable", "database unavailable");
		if (!ha_is_master(&s))
			return reply_error(r, 409, "not_master", "this node is not the master (role: %s)",
					   s.role[0] ? s.role : "none yet");
		if (atomic_load(&H.stop)) /* stopping: no hold to hold the stop up, no answer to poll again at once */
			return reply_error(r, 503, "unavailable", "this node's API is stopping");
		if (strcmp(s.origin, origin) != 0 || s.generation != gen || waited >= HA_HOLD_MS)
			break;
		usleep(HA_POLL_MS * 1000);
	}
	snap = hasnap_build(db, strcmp(s.origin, origin) != 0 || s.generation != gen);
	if (!snap)
		return reply_error(r, 503, "unavailable", "cannot read the configuration: %s", sqlite3_errmsg(db));
	text = json_dumps(snap, JSON_COMPACT);
	json_decref(snap);
	if (!text || ha_seal(cfg->ha_secret, cfg->ha_secret_len, nonce, text, strlen(text), &sealed, &len) < 0) {
		if (text)
			OPENSSL_cleanse(text, strlen(text));
		free(text);
		return reply_error(r, 503, "unavailable", "out of memory");
	}
	OPENSSL_cleanse(text, strlen(text)); /* password hashes and proxy credentials */
	free(text);
	ret = reply_text(r, 200, "application/octet-stream", (const char *)sealed, len);
	free(sealed);
	return ret;
}

json_t *ha_state_json(const struct pgw_config *cfg, sqlite3 *db)
{
	struct ha_state s;
	double lag;

	if (!cfg->ha_peer[0])
		return json_pack("{s:b}", "enabled", 0);
	if (ha_state_read(db, &s) < 0)
		return NULL;
	lag = ha_lag_seconds(&s, ha_now_ms());
	return json_pack(
	    "{s:b,s:s,s:s,s:I,s:I,s:o,s:I,s:o,s:s*,s:I}", "enabled", 1, "role", s.role[0] ? s.role : "unknown", "peer",
	    cfg->ha_peer, "generation", (json_int_t)s.generation, "master_generation", (json_int_t)s.master_generation,
	    "lag_seconds", lag < 0 ? json_null() : json_real(lag), "role_at_ms", (json_int_t)s.role_at_ms,
	    "synced_at_ms", s.synced_at_ms ? json_integer(s.synced_at_ms) : json_null(), "sync_error",
	    !ha_is_master(&s) && s.sync_error[0] ? s.sync_error : NULL, "transitions", (json_int_t)s.transitions);
}

int res_ha(struct req *r, const char *const *seg, int nseg)
{
	sqlite3 *db;
	json_t *j;

	if (nseg > 1 || (nseg == 1 && strcmp(seg[0], "sync") != 0)) /* the path first: 404 whatever the method */
		return reply_error(r, 404, "not_found", "no such resource");
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (nseg == 1)
		return sync_answer(r);
	if (auth_require(r, 0) < 0)
		return MHD_YES;
	if (!(db = api_db(r->api)) || !(j = ha_state_json(r->api->cfg, db)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	return reply_json(r, 200, j);
}

int ha_refuse_write(struct req *r)
{
	const struct pgw_config *cfg = r->api->cfg;
	struct ha_state s;
	sqlite3 *db;

	if (!cfg->ha_peer[0] || strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
	    strcmp(r->url, "/api/v1/auth/login") == 0)
		return 0;
	if ((db = api_db(r->api)) && ha_state_read(db, &s) == 0 && ha_is_master(&s))
		return 0;
	if (auth_require(r, 0) < 0) /* 401 sent: who is master is for those signed in */
		return 1;
	/* ending the sessions is a change to users.token_gen, which the master's next sync sets back */
	if (strcmp(r->url, "/api/v1/auth/logout") == 0) {
		reply_error(r, 503, "ha_backup",
			    "this gateway is the HA backup: log out on the master at %s (a logout here would not "
			    "end the session there, nor here for long)",
			    cfg->ha_peer);
		return 1;
	}
	reply_error(
	    r, 503, "ha_backup",
	    "this gateway is the HA backup and its configuration is read-only: make changes on the master at %s",
	    cfg->ha_peer);
	return 1;
}

void ha_metrics(struct api *api, sqlite3 *db, FILE *out)
{
	static const char *const roles[] = {"master", "backup", "fault", "unknown"};
	struct ha_state s;
	double lag;

	if (!api->cfg->ha_peer[0] || ha_state_read(db, &s) < 0)
		return;
	lag = ha_lag_seconds(&s, ha_now_ms());
	fprintf(out, "# HELP pgw_ha_role this node's VRRP role (1 for the one it has), as keepalived told it\n"
		     "# TYPE pgw_ha_role gauge\n");
	for (size_t i = 0; i < 4; i++)
		fprintf(out, "pgw_ha_role{role=\"%s\"} %d\n", roles[i],
			strcmp(s.role[0] ? s.role : "unknown", roles[i]) == 0);
	fprintf(out,
		"# HELP pgw_ha_generation the configuration generation this node holds (a master's count of writes)\n"
		"# TYPE pgw_ha_generation gauge\npgw_ha_generation %lld\n",
		(long long)s.generation);
	fprintf(
	    out,
	    "# HELP pgw_ha_lag_seconds how far this node's configuration is behind the master's (0 in step; -1 never "
	    "synced)\n# TYPE pgw_ha_lag_seconds gauge\npgw_ha_lag_seconds %.3f\n",
	    lag);
}

/* ---- the backup's side ---- */

static int progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)arg, (void)a, (void)b, (void)c, (void)d;
	return atomic_load(&H.stop); /* non-zero aborts the transfer: pgw-api is stopping */
}

static void record_error(sqlite3 *db, const char *msg)
{
	sqlite3_stmt *st;

	if (run(db, "UPDATE main.ha_state SET sync_error = ?1 WHERE id = 1 AND sync_error IS NOT ?1", &st) == 0) {
		sqlite3_bind_text(st, 1, msg, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db))
			log_warnx("ha: %s", msg);
		sqlite3_finalize(st);
	}
}

/* An answer "unchanged": in step only when it names the version held here (and this node is
 * still not master); else only the time of the answer. */
static void record_in_step(sqlite3 *db, const char *origin, long long master_gen)
{
	sqlite3_stmt *st;

	if (run(db,
		"UPDATE main.ha_state SET master_generation = ?1, synced_at_ms = ?2, sync_error = '', in_sync_at_ms = "
		"CASE WHEN origin = ?3 AND generation = ?1 THEN ?2 ELSE in_sync_at_ms END WHERE id = 1 AND role IS NOT "
		"'master'",
		&st) == 0) {
		sqlite3_bind_int64(st, 1, master_gen);
		sqlite3_bind_int64(st, 2, ha_now_ms());
		sqlite3_bind_text(st, 3, origin, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
}

static void sleep_ms(int ms)
{
	for (; ms > 0 && !atomic_load(&H.stop); ms -= 50)
		usleep(50 * 1000);
}

/* One exchange with the master. */
static void pull(sqlite3 *db, CURL *e, struct notify *nt, const struct ha_state *s)
{
	const struct pgw_config *cfg = H.api->cfg;
	char nonce[33], t[24], mac[65], url[400], hdr[200], errbuf[CURL_ERROR_SIZE] = "", err[400] = "", *text;
	struct curl_slist *l = NULL;
	struct api_buf b = {.max = HA_ANSWER_MAX};
	long status = 0;
	json_t *snap;
	int schema = 0;
	CURLcode rc;

	if (random_hex(nonce, 16) < 0)
		return;
	snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	ha_request_mac(cfg->ha_secret, cfg->ha_secret_len, t, nonce, s->origin, s->generation, mac);
	snprintf(hdr, sizeof(hdr), "X-Pgw-Ha: t=%s,n=%s,m=%s", t, nonce, mac);
	snprintf(url, sizeof(url), "%s://%s%s%s:%u/api/v1/ha/sync?origin=%s&generation=%lld",
		 cfg->tls_cert[0] ? "https" : "http", strchr(cfg->ha_peer, ':') ? "[" : "", cfg->ha_peer,
		 strchr(cfg->ha_peer, ':') ? "]" : "", cfg->api_port, s->origin, (long long)s->generation);
	l = curl_slist_append(l, hdr);
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(HA_HOLD_MS + 3000));
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* the answer is authenticated and encrypted under the pair's secret (the peer's certificate,
	 * often self-signed, adds nothing to that) */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, api_buf_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pgw-ha/" PGW_VERSION);
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_reset(e); /* it kept pointers to this frame's buffers and the header list */
	curl_slist_free_all(l);
	if (atomic_load(&H.stop))
		goto out;
	if (rc != CURLE_OK) {
		snprintf(err, sizeof(err), "cannot reach the master at %s: %s", cfg->ha_peer,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto fail;
	}
	if (status != 200) {
		json_t *j = b.p ? json_loads(b.p, 0, NULL) : NULL;
		const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		snprintf(err, sizeof(err), "the peer at %s answered %ld: %.200s", cfg->ha_peer, status, m ? m : "");
		json_decref(j);
		goto fail;
	}
	if (!(text = ha_unseal(cfg->ha_secret, cfg->ha_secret_len, nonce, (const unsigned char *)b.p, b.n))) {
		snprintf(err, sizeof(err),
			 "the answer from %s does not authenticate (not the same PGW_HA_SECRET_FILE?)", cfg->ha_peer);
		goto fail;
	}
	snap = json_loads(text, 0, NULL);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (db_user_version(db, &schema) < 0 || hasnap_check(snap, schema, err, sizeof(err)) < 0) {
		if (!err[0])
			snprintf(err, sizeof(err), "database unreadable");
		json_decref(snap);
		goto fail;
	}
	if (json_object_get(snap, "tables")) {
		char why[300] = "";
		if (hasnap_apply(db, snap, why, sizeof(why)) < 0) {
			snprintf(err, sizeof(err), "cannot apply the master's configuration: %s", why);
			json_decref(snap);
			goto fail;
		}
		log_info("ha: configuration of generation %lld from the master at %s applied",
			 (long long)json_integer_value(json_object_get(snap, "generation")), cfg->ha_peer);
		if (nt) {
			struct notify_msg m = {.type = NOTIFY_CHANGED,
					       .topics = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_SETTINGS | TOPIC_USERS};
			notify_broadcast(nt, &m);
		}
	} else {
		record_in_step(db, json_string_value(json_object_get(snap, "origin")),
			       json_integer_value(json_object_get(snap, "generation")));
	}
	json_decref(snap);
	goto out;
fail:
	record_error(db, err);
	sleep_ms(500);
out:
	free(b.p);
}

static void *sync_main(void *arg)
{
	sqlite3 *db = NULL;
	CURL *e = curl_easy_init();
	struct notify *nt;
	struct ha_state s;
	char err[256];

	(void)arg;
	nt = notify_open(H.api->cfg->run_dir, NULL, err, sizeof(err));
	if (db_open(H.api->cfg->db_path, 0, &db, err, sizeof(err)) < 0 || !e) {
		log_error("ha: the sync cannot start: %s", e ? err : "libcurl failed");
		goto out;
	}
	while (!atomic_load(&H.stop)) {
		if (ha_state_read(db, &s) < 0) {
			sleep_ms(1000);
			continue;
		}
		if (ha_is_master(&s)) { /* the master serves; it asks nobody */
			sleep_ms(200);
			continue;
		}
		pull(db, e, nt, &s);
	}
out:
	if (nt)
		notify_close(nt);
	if (e)
		curl_easy_cleanup(e);
	db_close(db);
	return NULL;
}

int ha_start(struct api *api)
{
	H.api = api;
	if (!api->cfg->ha_peer[0])
		return 0;
	atomic_store(&H.stop, 0);
	if (pthread_create(&H.thread, NULL, sync_main, NULL) != 0)
		return -1;
	H.running = 1;
	log_info("ha: paired with %s; configuration follows the master", api->cfg->ha_peer);
	return 0;
}

void ha_stop(void)
{
	atomic_store(&H.stop, 1); /* held sync requests answer at once, also when no sync runs here */
	if (!H.running)
		return;
	pthread_join(H.thread, NULL);
	H.running = 0;
}
