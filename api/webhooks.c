/* webhooks.c - see webhooks.h. */
#include "webhooks.h"

#include "hastate.h"

#include "db.h"
#include "log.h"
#include "net.h"
#include "settings.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const webhook_types[] = {"proxy.down",     "proxy.up",    "proxy.exit_ip_changed",
				     "client.blocked", "agent.error", NULL};

#define QUEUE_MAX    1024 /* events waiting for the thread */
#define PENDING_MAX  4096 /* deliveries waiting: first tries and retries */
#define INFLIGHT_MAX 16
#define ATTEMPTS     7	/* the first and six retries, 1 s to 32 s apart */
#define PER_HOOK_MAX 64 /* deliveries waiting for one webhook (one in flight, in order) */
#define CONNECT_MS   3000
#define TIMEOUT_MS   5000

struct event {
	int64_t org;
	char type[32], id[48];
	char *body;
	size_t len;
	struct event *next;
};

/* Where a webhook may connect (webhook_allow_private, lan_cidr), and what it was refused. */
struct guard {
	int allow_private;
	struct net_lan lan;
	char refused[NET_IP_STR_MAX];
};

struct delivery {
	int64_t hook;
	struct guard guard;
	char type[32], id[48];
	char *body; /* its own copy */
	size_t len;
	int attempt;
	uint64_t due_ms, t0;
	CURL *easy; /* while in flight */
	struct curl_slist *hdrs;
	char *url, *secret;
	char err[CURL_ERROR_SIZE];
	struct delivery *next;
};

static struct {
	pthread_mutex_t lock; /* the event queue, stop */
	struct event *head, *tail;
	unsigned n, dropped;
	int stop, started;
	pthread_t thread;
	CURLM *multi;
	struct api *api;
	uint64_t seq;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void webhook_signature(const char *secret, const char *body, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, md, &n);
	strcpy(out, "sha256=");
	for (unsigned i = 0; i < n && i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

int webhook_url_check(const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL;
	int ok = -1;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strlen(url) > 2048)
		snprintf(err, errlen, "url: longer than 2048 bytes");
	else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		 curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		 curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		snprintf(err, errlen, "url: not an absolute http:// or https:// URL with a host");
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		snprintf(err, errlen, "url: only http:// and https:// (not %.16s://)", scheme);
	else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		snprintf(err, errlen, "url: no user or password in it (the secret signs the body instead)");
	else
		ok = 0;
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

/* libcurl's socket for each address it tries: refused for a private one unless allowed (the
 * check is on the address connected to, so a name resolving there cannot get round it). */
static curl_socket_t open_guarded(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct guard *g = arg;

	(void)purpose;
	if (!g->allow_private && net_addr_private(&a->addr, &g->lan)) {
		if (a->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, g->refused, sizeof(g->refused));
		else if (a->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, g->refused,
				  sizeof(g->refused));
		else
			snprintf(g->refused, sizeof(g->refused), "?");
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* What the settings say now about where webhooks may connect. */
static void guard_load(sqlite3 *db, const struct pgw_config *cfg, struct guard *g)
{
	memset(g, 0, sizeof(*g));
	g->allow_private = settings_bool(db, cfg, "webhook_allow_private");
	settings_lan(db, cfg, &g->lan);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p, (void)arg;
	return size * n;
}

/* The POST of one delivery, ready to perform. NULL when out of memory. */
static CURL *request(const char *url, const char *secret, const char *type, const char *id, const char *body,
		     size_t len, struct curl_slist **hdrs, char *errbuf, struct guard *g)
{
	CURL *e = curl_easy_init();
	char h[160], sig[80];
	struct curl_slist *l = NULL, *t;

	*hdrs = NULL;
	if (!e)
		return NULL;
	snprintf(h, sizeof(h), "X-Pgw-Event: %s", type);
	l = curl_slist_append(l, "Content-Type: application/json");
	if (l && (t = curl_slist_append(l, h)))
		l = t;
	snprintf(h, sizeof(h), "X-Pgw-Delivery: %s", id);
	if (l && (t = curl_slist_append(l, h)))
		l = t;
	if (l && *secret) {
		webhook_signature(secret, body, len, sig);
		snprintf(h, sizeof(h), "X-Pgw-Signature: %s", sig);
		if ((t = curl_slist_append(l, h)))
			l = t;
	}
	if (!l) {
		curl_easy_cleanup(e);
		return NULL;
	}
	*hdrs = l;
	errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pgw-webhook/" PGW_VERSION);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* never through the environment's http_proxy */
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_guarded);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, g);
	/* guarded: a connection of its own, checked by open_guarded (libcurl's cache could hold one
	 * opened while webhook_allow_private was on) */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, (long)!g->allow_private);
	return e;
}

/* The result of an attempt on the webhook's row. */
static void record(sqlite3 *db, int64_t hook, int ok, long status, const char *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db,
			       "UPDATE main.webhooks SET last_attempt_at = unixepoch(), last_status = ?2, last_error = "
			       "?3, deliveries = deliveries + ?4, failures = failures + (1 - ?4), last_success_at = "
			       "CASE WHEN ?4 THEN unixepoch() ELSE last_success_at END WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, hook);
	if (status)
		sqlite3_bind_int64(st, 2, status);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, ok ? "" : err, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, ok);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("webhook %lld: cannot record the delivery: %s", (long long)hook, sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

/* Why an attempt failed, for the row and the log. */
static void outcome(CURLcode rc, long status, const char *errbuf, const struct guard *g, char *err, size_t errlen)
{
	if (rc != CURLE_OK && g->refused[0])
		snprintf(err, errlen,
			 "refused: %s is a loopback, private, LAN or gateway address (the setting "
			 "webhook_allow_private allows it)",
			 g->refused);
	else if (rc != CURLE_OK)
		snprintf(err, errlen, "%s", *errbuf ? errbuf : curl_easy_strerror(rc));
	else
		snprintf(err, errlen, "HTTP %ld", status);
}

int webhook_deliver_now(sqlite3 *db, const struct pgw_config *cfg, int64_t id, const char *url, const char *secret,
			const char *type, json_t *data, long *status, char *err, size_t errlen, long *ms)
{
	char evid[48], errbuf[CURL_ERROR_SIZE];
	struct timespec ts;
	struct curl_slist *hdrs = NULL;
	struct guard g;
	char *body;
	CURL *e;
	CURLcode rc;
	uint64_t t0 = mono_ms();
	int ok;

	guard_load(db, cfg, &g);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(evid, sizeof(evid), "%lld-test-%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		 (long long)id);
	{
		json_t *ev = json_pack("{s:s, s:s, s:I, s:O}", "id", evid, "type", type, "created_at_ms",
				       (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "data", data);
		body = ev ? json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(ev);
	}
	*status = 0;
	if (!body || !(e = request(url, secret, type, evid, body, strlen(body), &hdrs, errbuf, &g))) {
		free(body);
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	ok = rc == CURLE_OK && *status >= 200 && *status < 300;
	outcome(rc, *status, errbuf, &g, err, errlen);
	*ms = (long)(mono_ms() - t0);
	record(db, id, ok, *status, err);
	log_info("webhook %lld: %s %s (%s, %ld ms)", (long long)id, type, ok ? "delivered" : "not delivered", err, *ms);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	free(body);
	return ok;
}

void webhooks_emit(int64_t org, const char *type, json_t *data)
{
	struct event *ev;
	struct timespec ts;
	long long now;

	if (!W.started || !data) {
		json_decref(data);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	ev = calloc(1, sizeof(*ev));
	if (!ev) {
		json_decref(data);
		return;
	}
	ev->org = org;
	snprintf(ev->type, sizeof(ev->type), "%s", type);
	pthread_mutex_lock(&W.lock);
	snprintf(ev->id, sizeof(ev->id), "%lld-%llu", now, (unsigned long long)++W.seq);
	pthread_mutex_unlock(&W.lock);
	{
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:o}", "id", ev->id, "type", type, "created_at_ms",
				      (json_int_t)now, "org_id", (json_int_t)org, "data", data);
		ev->body = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(j);
	}
	if (!ev->body) {
		free(ev);
		return;
	}
	ev->len = strlen(ev->body);
	pthread_mutex_lock(&W.lock);
	if (W.n >= QUEUE_MAX) {
		W.dropped++;
		pthread_mutex_unlock(&W.lock);
		free(ev->body);
		free(ev);
		return;
	}
	if (W.tail)
		W.tail->next = ev;
	else
		W.head = ev;
	W.tail = ev;
	W.n++;
	pthread_mutex_unlock(&W.lock);
	curl_multi_wakeup(W.multi);
}

static int lists(const char *events, const char *type)
{
	size_t n = strlen(type);

	for (const char *p = events; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, type, n) == 0)
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* A delivery per enabled webhook of the event's organisation that lists its type. */
static unsigned fan_out(sqlite3 *db, const struct event *ev, struct delivery **pending, unsigned n)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = mono_ms();
	struct ha_state ha;

	/* an HA pair alerts from its master only (the backup sees the same proxies die) */
	if (W.api->cfg->ha_peer[0] && ha_state_read(db, &ha) == 0 && !ha_is_master(&ha))
		return n;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, events FROM main.webhooks WHERE enabled = 1 AND (?1 = 0 OR org_id = ?1) "
			       "ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		log_warnx("webhooks: %s", sqlite3_errmsg(db));
		return n;
	}
	sqlite3_bind_int64(st, 1, ev->org);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct delivery *d;
		if (!lists((const char *)sqlite3_column_text(st, 1), ev->type))
			continue;
		if (n >= PENDING_MAX || !(d = calloc(1, sizeof(*d))) || !(d->body = malloc(ev->len + 1))) {
			if (n < PENDING_MAX)
				free(d);
			log_warnx("webhook %lld: %s dropped (%u deliveries waiting)",
				  (long long)sqlite3_column_int64(st, 0), ev->type, n);
			continue;
		}
		d->hook = sqlite3_column_int64(st, 0);
		memcpy(d->type, ev->type, sizeof(d->type));
		memcpy(d->id, ev->id, sizeof(d->id));
		memcpy(d->body, ev->body, ev->len + 1);
		d->len = ev->len;
		d->due_ms = now;
		{ /* at the tail: each webhook's deliveries go out in the order of their events */
			struct delivery **pp = pending;
			unsigned same = 0;
			while (*pp) {
				same += (*pp)->hook == d->hook;
				pp = &(*pp)->next;
			}
			if (same >= PER_HOOK_MAX) {
				log_warnx("webhook %lld: %s dropped (%u deliveries waiting for it)", (long long)d->hook,
					  d->type, same);
				free(d->body);
				free(d);
				continue;
			}
			*pp = d;
		}
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

/* Start an attempt: the webhook's current URL and secret (gone or disabled: dropped, -1). */
static int start(sqlite3 *db, struct delivery *d)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db, "SELECT url, secret FROM main.webhooks WHERE id = ?1 AND enabled = 1", -1, &st,
			       NULL) != SQLITE_OK) {
		d->due_ms = mono_ms() + 1000; /* busy: again in a second */
		return 0;
	}
	sqlite3_bind_int64(st, 1, d->hook);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		d->url = strdup((const char *)sqlite3_column_text(st, 0));
		d->secret = strdup((const char *)sqlite3_column_text(st, 1));
		found = 1;
		break;
	case SQLITE_DONE: /* deleted or disabled */
		break;
	default: /* busy: again in a second */
		found = -1;
	}
	sqlite3_finalize(st);
	if (found <= 0) {
		d->due_ms = mono_ms() + 1000;
		return found == 0 ? -1 : 0;
	}
	guard_load(db, W.api->cfg, &d->guard);
	if (!d->url || !d->secret ||
	    !(d->easy = request(d->url, d->secret, d->type, d->id, d->body, d->len, &d->hdrs, d->err, &d->guard)) ||
	    curl_multi_add_handle(W.multi, d->easy) != CURLM_OK) {
		if (d->easy)
			curl_easy_cleanup(d->easy);
		d->easy = NULL;
		curl_slist_free_all(d->hdrs);
		d->hdrs = NULL;
		d->due_ms = mono_ms() + 1000;
		return 0;
	}
	curl_easy_setopt(d->easy, CURLOPT_PRIVATE, d);
	d->t0 = mono_ms();
	return 1;
}

static void end_attempt(struct delivery *d)
{
	if (d->easy) {
		curl_multi_remove_handle(W.multi, d->easy);
		curl_easy_cleanup(d->easy);
	}
	curl_slist_free_all(d->hdrs);
	if (d->secret)
		explicit_bzero(d->secret, strlen(d->secret));
	free(d->url);
	free(d->secret);
	d->easy = NULL;
	d->hdrs = NULL;
	d->url = d->secret = NULL;
}

static void delivery_free(struct delivery *d)
{
	end_attempt(d);
	free(d->body);
	free(d);
}

/* An attempt ended: recorded; 1 when the delivery is over (delivered or out of attempts). */
static int finished(sqlite3 *db, struct delivery *d, CURLcode rc)
{
	long status = 0;
	char err[CURL_ERROR_SIZE + 96];
	int ok;

	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
	ok = rc == CURLE_OK && status >= 200 && status < 300;
	outcome(rc, status, d->err, &d->guard, err, sizeof(err));
	record(db, d->hook, ok, status, err);
	d->attempt++;
	if (ok)
		log_info("webhook %lld: %s %s delivered (HTTP %ld, %llu ms)", (long long)d->hook, d->type, d->id,
			 status, (unsigned long long)(mono_ms() - d->t0));
	else if (d->attempt < ATTEMPTS)
		log_warnx("webhook %lld: %s %s attempt %d failed (%s); again in %d s", (long long)d->hook, d->type,
			  d->id, d->attempt, err, 1 << (d->attempt - 1));
	else
		log_warnx("webhook %lld: %s %s not delivered after %d attempts (%s)", (long long)d->hook, d->type,
			  d->id, d->attempt, err);
	end_attempt(d);
	if (ok || d->attempt >= ATTEMPTS)
		return 1;
	d->due_ms = mono_ms() + (1000ull << (d->attempt - 1));
	return 0;
}

static void *run(void *arg)
{
	struct delivery *pending = NULL, *d;
	unsigned n = 0, inflight = 0, nseen;
	static int64_t seen[PENDING_MAX]; /* webhooks met in this pass over the list (this thread's only) */
	sqlite3 *db;

	(void)arg;
	api_scope(API_ORG_ALL);
	db = api_db(W.api);
	for (;;) {
		struct event *evs;
		struct delivery **pp;
		unsigned dropped;
		uint64_t now, wait = 1000;
		int running, left, stop;
		CURLMsg *m;

		pthread_mutex_lock(&W.lock);
		evs = W.head;
		W.head = W.tail = NULL;
		W.n = 0;
		dropped = W.dropped;
		W.dropped = 0;
		stop = W.stop;
		pthread_mutex_unlock(&W.lock);
		if (dropped)
			log_warnx("webhooks: %u events dropped (more than %d waiting)", dropped, QUEUE_MAX);
		while (evs) {
			struct event *next = evs->next;
			if (!stop && db)
				n = fan_out(db, evs, &pending, n);
			free(evs->body);
			free(evs);
			evs = next;
		}
		if (stop || !db)
			break;
		now = mono_ms();
		nseen = 0;
		for (pp = &pending; (d = *pp);) {
			int s = 0, earlier = 0;
			/* one at a time per webhook, in order: only its first waiting delivery may start */
			for (unsigned i = 0; i < nseen && !earlier; i++)
				earlier = seen[i] == d->hook;
			if (!earlier && nseen < PENDING_MAX)
				seen[nseen++] = d->hook;
			if (!earlier && !d->easy && d->due_ms <= now && inflight < INFLIGHT_MAX &&
			    (s = start(db, d)) < 0) {
				*pp = d->next; /* the webhook is gone or disabled */
				delivery_free(d);
				n--;
				continue;
			}
			inflight += s > 0;
			if (!earlier && !d->easy && d->due_ms > now && d->due_ms - now < wait)
				wait = d->due_ms - now;
			pp = &d->next;
		}
		curl_multi_perform(W.multi, &running);
		while ((m = curl_multi_info_read(W.multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&d);
			inflight--;
			if (finished(db, d, m->data.result)) {
				for (pp = &pending; *pp != d; pp = &(*pp)->next)
					;
				*pp = d->next;
				delivery_free(d);
				n--;
			}
			wait = 0; /* a retry may be due, others may start */
		}
		curl_multi_poll(W.multi, NULL, 0, (int)wait, NULL);
	}
	if (n)
		log_warnx("webhooks: %u deliveries not made (pgw-api stopping)", n);
	while (pending) {
		d = pending->next;
		delivery_free(pending);
		pending = d;
	}
	return NULL;
}

int webhooks_start(struct api *a)
{
	W.api = a;
	if (!(W.multi = curl_multi_init())) {
		log_error("webhooks: cannot set up libcurl");
		return -1;
	}
	W.started = 1;
	if (pthread_create(&W.thread, NULL, run, NULL) != 0) {
		W.started = 0;
		curl_multi_cleanup(W.multi);
		W.multi = NULL;
		log_error("webhooks: cannot start the delivery thread");
		return -1;
	}
	return 0;
}

void webhooks_stop(void)
{
	if (!W.started)
		return;
	pthread_mutex_lock(&W.lock);
	W.stop = 1;
	pthread_mutex_unlock(&W.lock);
	curl_multi_wakeup(W.multi);
	pthread_join(W.thread, NULL);
	W.started = 0;
	while (W.head) {
		struct event *e = W.head;
		W.head = e->next;
		free(e->body);
		free(e);
	}
	curl_multi_cleanup(W.multi);
	W.multi = NULL;
}
