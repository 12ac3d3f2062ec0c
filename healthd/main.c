/* pgw-healthd - probes every enabled upstream proxy through the proxy itself: status,
 * latency (connect / handshake / first byte), exit IP, typed last error. All probes run
 * concurrently on one event loop. Hysteresis (failures before down, successes before up),
 * faster re-checks of down proxies, on-demand checks for the API's health gate and for the
 * forwarder's failure reports. Writes the DB, then notifies. Learns, with one extra pipelined
 * probe, whether each SOCKS5 proxy takes its handshake in one write (proxy_health.pipelining,
 * read by the forwarder); unlearns it on any change of the proxy or failure the forwarder sees. */
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "net.h"
#include "probe.h"
#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 250
#define MAX_WAITERS 8

struct target {
	int64_t id;
	char name[65];
	enum upstream_type type;
	struct sockaddr_storage addr; /* IPv4 or IPv6 */
	int addr_ok;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1];
	char status[8]; /* unknown | up | down */
	unsigned fails, succs;
	char exit_ip[PROBE_IP_MAX];
	uint64_t next_due;
	struct probe *probe;
	struct probe *pipe_probe; /* the pipelined capability probe */
	int pipe_tested;	  /* since the proxy was loaded or last changed or failed */
	int pipelining;		  /* as stored in proxy_health.pipelining */
	char waiters[MAX_WAITERS][NOTIFY_NAME_MAX];
	int n_waiters;
	int seen;
};

struct healthd {
	struct daemon *d;
	struct target *t;
	size_t n, cap;
	struct net_http_url url;
	int url_ok;
	unsigned interval_ms, down_interval_ms, timeout_ms, fail_th, succ_th, hist_max;
	int pipeline_check; /* setting socks_pipelining */
	struct ev_handle *tick;
	int api_dirty;
};

static void load_settings(struct healthd *h)
{
	char url[SETTINGS_VALUE_MAX];
	sqlite3 *db = h->d->db;

	h->interval_ms = settings_get_uint(db, "health_interval", h->d->cfg.health_interval_s) * 1000;
	h->down_interval_ms = settings_get_uint(db, "health_down_interval", 5) * 1000;
	h->timeout_ms = settings_get_uint(db, "health_timeout", h->d->cfg.health_timeout_s) * 1000;
	h->fail_th = settings_get_uint(db, "health_fail_threshold", 1);
	h->succ_th = settings_get_uint(db, "health_success_threshold", 2);
	h->hist_max = settings_get_uint(db, "health_history_max", 1000);
	h->pipeline_check = settings_get_bool(db, "socks_pipelining", 1);
	if (settings_get(db, "health_url", url, sizeof(url)) < 0)
		snprintf(url, sizeof(url), "%s", h->d->cfg.health_url);
	h->url_ok = net_http_url_parse(url, &h->url) == 0;
	if (!h->url_ok)
		log_error("health_url '%s' is not usable: every proxy will be reported down", url);
}

static struct target *find(struct healthd *h, int64_t id)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->t[i].id == id)
			return &h->t[i];
	return NULL;
}

static void drop_target(struct healthd *h, size_t i)
{
	probe_cancel(h->t[i].probe);
	probe_cancel(h->t[i].pipe_probe);
	explicit_bzero(&h->t[i], sizeof(h->t[i]));
	h->t[i] = h->t[--h->n];
}

/* Store what the pipelined probe found (or 0 when it must be found again) and tell the forwarder. */
static void set_pipelining(struct healthd *h, struct target *t, int v)
{
	struct notify_msg m = { .type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id };
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (t->pipelining == v)
		return;
	if (sqlite3_prepare_v2(h->d->db, "UPDATE proxy_health SET pipelining = ?2 WHERE proxy_id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_int(st, 2, v);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("proxy %lld: cannot store pipelining: %s", (long long)t->id, sqlite3_errmsg(h->d->db));
		return;
	}
	t->pipelining = v;
	dbwatch_sync(h->d->watch);
	notify_send(h->d->nt, "forwarder", &m);
	h->api_dirty = 1;
}

/* Back to lock-step until a pipelined probe succeeds again. */
static void forget_pipelining(struct healthd *h, struct target *t, const char *why)
{
	probe_cancel(t->pipe_probe);
	t->pipe_probe = NULL;
	t->pipe_tested = 0;
	if (t->pipelining)
		log_info("proxy %lld (%s): %s: lock-step SOCKS5 handshakes until tested again", (long long)t->id, t->name,
			 why);
	set_pipelining(h, t, 0);
}

static void on_pipe_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		if (t->pipe_probe != p)
			continue;
		t->pipe_probe = NULL;
		t->pipe_tested = 1;
		log_info("proxy %lld (%s): %s pipelined SOCKS5 handshakes (%s)", (long long)t->id, t->name,
			 r->error == PROBE_OK ? "takes" : "does not take", r->reason);
		set_pipelining(h, t, r->error == PROBE_OK);
		return;
	}
}

/* After a good probe of a SOCKS5 proxy not yet tested: one more, pipelined, on the side. */
static void test_pipelining(struct healthd *h, struct target *t)
{
	if (t->type != UPSTREAM_SOCKS5 || t->pipe_tested || t->pipe_probe || !h->pipeline_check)
		return;
	t->pipe_probe = probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass, 1, &h->url, h->timeout_ms,
				    on_pipe_probe_done, h);
}

static void apply_pipeline_setting(struct healthd *h)
{
	if (!h->pipeline_check)
		for (size_t i = 0; i < h->n; i++)
			forget_pipelining(h, &h->t[i], "socks_pipelining is off");
}

/* Merge the enabled proxies from the DB into the target list; probes in flight carry on. */
static int load_targets(struct healthd *h)
{
	static const char *const sql =
		"SELECT p.id, p.name, p.type, p.host, p.port, p.username, p.password, coalesce(h.status, 'unknown'), "
		"coalesce(h.consecutive_failures, 0), coalesce(h.consecutive_successes, 0), coalesce(h.exit_ip, ''), "
		"coalesce(h.pipelining, 0) "
		"FROM proxies p LEFT JOIN proxy_health h ON h.proxy_id = p.id WHERE p.enabled = 1";
	sqlite3_stmt *st = NULL;
	uint64_t now = ev_now_ms();

	if (sqlite3_prepare_v2(h->d->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("load proxies: %s", sqlite3_errmsg(h->d->db));
		return -EIO;
	}
	for (size_t i = 0; i < h->n; i++)
		h->t[i].seen = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct target *t = find(h, id), nt;
		int fresh = !t;

		if (fresh) {
			if (h->n == h->cap) {
				size_t nc = h->cap ? h->cap * 2 : 64;
				struct target *p = realloc(h->t, nc * sizeof(*p));
				if (!p)
					break;
				h->t = p;
				h->cap = nc;
			}
			memset(&nt, 0, sizeof(nt));
			t = &nt;
			t->id = id;
			t->next_due = now;
			snprintf(t->status, sizeof(t->status), "%s", (const char *)sqlite3_column_text(st, 7));
			t->fails = (unsigned)sqlite3_column_int(st, 8);
			t->succs = (unsigned)sqlite3_column_int(st, 9);
			snprintf(t->exit_ip, sizeof(t->exit_ip), "%s", (const char *)sqlite3_column_text(st, 10));
			t->pipelining = sqlite3_column_int(st, 11);
		}
		snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 1));
		{
			struct target old = *t;
			t->type = strcmp((const char *)sqlite3_column_text(st, 2), "http") == 0 ? UPSTREAM_HTTP : UPSTREAM_SOCKS5;
			t->addr_ok = net_resolve((const char *)sqlite3_column_text(st, 3), (uint16_t)sqlite3_column_int(st, 4),
						 &t->addr) == 0;
			snprintf(t->user, sizeof(t->user), "%s", (const char *)sqlite3_column_text(st, 5));
			snprintf(t->pass, sizeof(t->pass), "%s", (const char *)sqlite3_column_text(st, 6));
			if (!fresh && (old.type != t->type || memcmp(&old.addr, &t->addr, sizeof(t->addr)) != 0 ||
				       strcmp(old.user, t->user) != 0 || strcmp(old.pass, t->pass) != 0))
				forget_pipelining(h, t, "the proxy changed");
			explicit_bzero(&old, sizeof(old));
		}
		t->seen = 1;
		if (fresh) {
			h->t[h->n++] = nt;
			explicit_bzero(&nt, sizeof(nt));
		}
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < h->n;) /* deleted or disabled proxies */
		if (!h->t[i].seen)
			drop_target(h, i);
		else
			i++;
	return 0;
}

static void reply_waiters(struct healthd *h, struct target *t, const struct probe_result *r)
{
	struct notify_msg m = { .type = NOTIFY_CHECK_RESULT, .id = t->id, .status = r->error == PROBE_OK,
				.value = (int32_t)r->total_ms };

	snprintf(m.text, sizeof(m.text), "%.59s", r->error == PROBE_OK ? r->exit_ip : r->reason);
	for (int i = 0; i < t->n_waiters; i++)
		notify_send(h->d->nt, t->waiters[i], &m);
	t->n_waiters = 0;
}

/* How long a result may be trusted: the next one is due within an interval plus the three
 * steps' timeouts; one interval more for slack. Past it the proxy counts as unknown (blocked),
 * so a stopped or wedged healthd fails closed (migration 0008). */
static unsigned health_fresh_s(const struct healthd *h)
{
	return (2 * h->interval_ms + 3 * h->timeout_ms + 999) / 1000;
}

static void record(struct healthd *h, struct target *t, const struct probe_result *r)
{
	static const char *const up_sql =
		"UPDATE proxy_health SET status = ?2, latency_ms = ?3, connect_ms = ?4, handshake_ms = ?5, "
		"first_byte_ms = ?6, exit_ip = ?7, checked_at = unixepoch(), last_error = ?8, consecutive_failures = ?9, "
		"consecutive_successes = ?10, fresh_until = unixepoch() + ?11 WHERE proxy_id = ?1";
	static const char *const hist_sql =
		"INSERT INTO health_history (proxy_id, checked_at, status, latency_ms, exit_ip, error) "
		"VALUES (?1, unixepoch(), ?2, ?3, ?4, ?5)";
	static const char *const trim_sql =
		"DELETE FROM health_history WHERE proxy_id = ?1 AND id <= (SELECT id FROM health_history "
		"WHERE proxy_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";
	sqlite3 *db = h->d->db;
	sqlite3_stmt *st = NULL;
	int ok = r->error == PROBE_OK, rc = SQLITE_ERROR;

	if (db_begin(db) < 0)
		return;
	if (sqlite3_prepare_v2(db, up_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_text(st, 2, t->status, -1, SQLITE_STATIC);
		if (ok) {
			sqlite3_bind_int(st, 3, (int)r->total_ms);
			sqlite3_bind_int(st, 4, (int)r->connect_ms);
			sqlite3_bind_int(st, 5, (int)r->handshake_ms);
			sqlite3_bind_int(st, 6, (int)r->first_byte_ms);
		}
		sqlite3_bind_text(st, 7, t->exit_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, ok ? "" : r->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 9, (int)t->fails);
		sqlite3_bind_int(st, 10, (int)t->succs);
		sqlite3_bind_int(st, 11, (int)health_fresh_s(h));
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && sqlite3_prepare_v2(db, hist_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_text(st, 2, ok ? "up" : "down", -1, SQLITE_STATIC);
		if (ok)
			sqlite3_bind_int(st, 3, (int)r->total_ms);
		sqlite3_bind_text(st, 4, ok ? r->exit_ip : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, ok ? "" : r->reason, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_DONE && sqlite3_prepare_v2(db, trim_sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_int(st, 2, (int)h->hist_max);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE || db_commit(db) < 0) {
		log_error("proxy %lld: cannot record health: %s", (long long)t->id, sqlite3_errmsg(db));
		db_rollback(db);
		return;
	}
	dbwatch_sync(h->d->watch);
}

/* A probe's outcome: hysteresis, the DB, notifications, waiting requesters, next due time. */
static void apply_result(struct healthd *h, struct target *t, const struct probe_result *r)
{
	char old[8];
	int ok = r->error == PROBE_OK;

	snprintf(old, sizeof(old), "%s", t->status);
	if (ok) {
		t->succs++;
		t->fails = 0;
		if (strcmp(t->status, "up") != 0 && (strcmp(t->status, "unknown") == 0 || t->succs >= h->succ_th))
			snprintf(t->status, sizeof(t->status), "up");
		if (strcmp(old, "up") == 0 && t->exit_ip[0] && strcmp(t->exit_ip, r->exit_ip) != 0)
			log_info("proxy %lld (%s): exit ip changed %s -> %s", (long long)t->id, t->name, t->exit_ip, r->exit_ip);
		snprintf(t->exit_ip, sizeof(t->exit_ip), "%s", r->exit_ip);
	} else {
		t->fails++;
		t->succs = 0;
		if (strcmp(t->status, "down") != 0 && t->fails >= h->fail_th)
			snprintf(t->status, sizeof(t->status), "down");
	}
	record(h, t, r);
	if (strcmp(old, t->status) != 0) {
		struct notify_msg m = { .type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id };
		log_info("proxy %lld (%s): %s -> %s (%s, %u ms%s%s)", (long long)t->id, t->name, old, t->status, r->reason,
			 r->total_ms, ok ? ", exit " : "", ok ? r->exit_ip : "");
		/* the agent and the forwarder act on status changes: tell them now */
		notify_send(h->d->nt, "agent", &m);
		notify_send(h->d->nt, "forwarder", &m);
	} else {
		log_debug("proxy %lld (%s): %s, %s, %u ms", (long long)t->id, t->name, t->status, r->reason, r->total_ms);
	}
	h->api_dirty = 1;
	reply_waiters(h, t, r);
	if (ok)
		test_pipelining(h, t);
	t->next_due = ev_now_ms() + (strcmp(t->status, "down") == 0 ? h->down_interval_ms : h->interval_ms);
}

static void on_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		if (h->t[i].probe == p) {
			h->t[i].probe = NULL;
			apply_result(h, &h->t[i], r);
			return;
		}
	}
}

static void start_probe(struct healthd *h, struct target *t)
{
	struct probe_result fail = { .error = PROBE_INTERNAL };

	if (t->probe)
		return;
	if (!t->addr_ok || !h->url_ok) {
		fail.error = PROBE_UPSTREAM;
		fail.up = UP_ERR_CONNECT;
		snprintf(fail.reason, sizeof(fail.reason), "%s", !t->addr_ok ? "proxy host does not resolve" : "bad health_url");
		apply_result(h, t, &fail);
		return;
	}
	t->probe = probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass, 0, &h->url, h->timeout_ms, on_probe_done, h);
	if (!t->probe)
		log_warn("proxy %lld: cannot start a probe", (long long)t->id);
}

static void on_tick(struct evloop *ev, void *arg)
{
	struct healthd *h = arg;
	uint64_t now = ev_now_ms();

	(void)ev;
	for (size_t i = 0; i < h->n; i++)
		if (!h->t[i].probe && now >= h->t[i].next_due)
			start_probe(h, &h->t[i]);
	if (h->api_dirty) { /* latency and history for the dashboard: at most 4 a second */
		struct notify_msg m = { .type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH };
		notify_send(h->d->nt, "api", &m);
		h->api_dirty = 0;
	}
}

static void check_now(struct healthd *h, int64_t id, const char *from)
{
	struct target *t = find(h, id);

	if (!t) { /* perhaps created a moment ago */
		load_targets(h);
		t = find(h, id);
	}
	if (!t) {
		struct notify_msg m = { .type = NOTIFY_CHECK_RESULT, .id = id, .status = 0 };
		snprintf(m.text, sizeof(m.text), "unknown or disabled proxy");
		if (from && *from)
			notify_send(h->d->nt, from, &m);
		return;
	}
	if (from && *from && t->n_waiters < MAX_WAITERS) /* concurrent requests share one probe */
		snprintf(t->waiters[t->n_waiters++], NOTIFY_NAME_MAX, "%s", from);
	start_probe(h, t);
}

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	struct healthd *h = d->priv;

	if (msg && msg->type == NOTIFY_CHECK_REQUEST) {
		check_now(h, msg->id, from);
		return;
	}
	if (msg && msg->type == NOTIFY_UPSTREAM_FAILED) {
		struct target *t = find(h, msg->id);
		log_info("proxy %lld: the forwarder saw it fail (%s); checking now", (long long)msg->id, msg->text);
		if (t) {
			forget_pipelining(h, t, "the forwarder saw it fail");
			start_probe(h, t);
		}
		return;
	}
	if (msg && (msg->type != NOTIFY_CHANGED || !(msg->topics & (TOPIC_PROXIES | TOPIC_SETTINGS))))
		return;
	load_settings(h);
	load_targets(h);
	apply_pipeline_setting(h);
}

static const struct daemon_info info = {
	.name = "pgw-healthd",
	.sock_name = "healthd",
	.summary = "Probes every upstream proxy through itself: status, latency, exit IP.",
	.on_change = on_change,
	.watch_sql = "SELECT sum(seq) FROM change_seq WHERE topic IN ('proxies', 'settings')",
	.watch_topics = TOPIC_PROXIES | TOPIC_SETTINGS,
};

int main(int argc, char **argv)
{
	struct healthd h;
	struct daemon d;
	int r;

	memset(&h, 0, sizeof(h));
	r = daemon_init(&d, &info, argc, argv);
	if (r == DAEMON_CONTINUE) {
		h.d = &d;
		d.priv = &h;
		daemon_raise_nofile(); /* one socket per concurrent probe */
		load_settings(&h);
		load_targets(&h);
		apply_pipeline_setting(&h);
		log_info("probing %zu proxies every %u s (down: every %u s), timeout %u s per step", h.n, h.interval_ms / 1000,
			 h.down_interval_ms / 1000, h.timeout_ms / 1000);
		h.tick = ev_add_timer(d.ev, 0, TICK_MS, on_tick, &h);
		r = h.tick ? (daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK) : DAEMON_EXIT_FAIL;
		while (h.n)
			drop_target(&h, 0);
	}
	free(h.t);
	daemon_fini(&d);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
