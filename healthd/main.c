/* pgw-healthd - probes every enabled upstream proxy through the proxy itself: status,
 * latency (connect / handshake / first byte), exit IP, typed last error. All probes run
 * concurrently on one event loop; this file schedules them (faster re-checks of down proxies,
 * on-demand checks for the API's health gate and for the forwarder's failure reports).
 * hysteresis.c decides the status, store.c writes it (then this notifies), pipelining.c
 * learns which SOCKS5 proxies take their handshake in one write. */
#include "dnscheck.h"
#include "udpcheck.h"
#include "healthd.h"

#include "audit.h"
#include "db.h"
#include "dnstls.h"
#include "log.h"
#include "pipelining.h"
#include "hostres.h"
#include "settings.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every setting healthd uses, into s, from one snapshot: 0, or -EIO with why when one did not
 * read (the DB locked or failing, a column gone) and its default stands in for it in s (s is
 * always filled). A DB that does not read fails at the first read: one busy wait
 * (HEALTHD_DB_BUSY_MS), not one per setting, on the loop that runs the probes. */
static int read_settings(struct healthd *h, struct health_settings *s, char *why, size_t whylen)
{
	const struct pgw_config *cfg = &h->d->cfg;
	/* not readable: s from the configuration alone (the defaults serving at the start) */
	const int unread = db_read_begin(h->d->db, why, whylen) < 0;
	sqlite3 *db = unread ? NULL : h->d->db;
	int r;

	settings_read_begin(); /* (with no DB, the reads are the configuration's and cannot fail) */
	s->params.interval_ms = settings_uint(db, cfg, "health_interval") * 1000;
	s->params.down_interval_ms = settings_uint(db, cfg, "health_down_interval") * 1000;
	s->params.timeout_ms = settings_uint(db, cfg, "health_timeout") * 1000;
	s->params.fail_th = settings_uint(db, cfg, "health_fail_threshold");
	s->params.succ_th = settings_uint(db, cfg, "health_success_threshold");
	s->params.hist_max = settings_uint(db, cfg, "health_history_max");
	s->params.pipeline_check = settings_bool(db, cfg, "socks_pipelining");
	s->params.allow_local = settings_bool(db, cfg, "proxy_allow_local");
	settings_lan(db, cfg, &s->params.lan);
	settings_str(db, cfg, "health_url", s->url, sizeof(s->url));
	settings_str(db, cfg, "health_ca_file", s->ca_file, sizeof(s->ca_file));
	settings_str(db, cfg, "dns_mode", s->dns_mode, sizeof(s->dns_mode));
	settings_str(db, cfg, "dns_upstream", s->dns_upstream, sizeof(s->dns_upstream));
	settings_str(db, cfg, "dns_check_name", s->dns_check_name, sizeof(s->dns_check_name));
	settings_str(db, cfg, "udp_check", s->udp_check, sizeof(s->udp_check));
	if (unread)
		return -EIO;
	if ((r = settings_read_end()) < 0)
		snprintf(why, whylen, "a setting's row: %s", sqlite3_errmsg(db));
	db_read_end(db);
	return r;
}

static void use_settings(struct healthd *h, const struct health_settings *s)
{
	h->params = s->params;
	if ((h->n_urls = net_http_url_list_parse(s->url, h->urls, NET_HTTP_URLS_MAX)) < 0) {
		h->n_urls = 0;
		log_error("health_url '%s' is not usable: every proxy will be reported down", s->url);
	}
	if (!h->health_cred || strcmp(s->ca_file, h->health_ca) != 0) {
		gnutls_certificate_credentials_t x = NULL;
		char err[300];
		if (dns_tls_creds(s->ca_file, &x, err, sizeof(err)) < 0)
			log_warnx("health_ca_file: %s", err); /* https health URLs will fail, with the reason */
		if (x && h->health_cred && h->n_retired < (int)(sizeof(h->retired) / sizeof(h->retired[0])))
			h->retired[h->n_retired++] = h->health_cred;
		else if (x && h->health_cred) { /* changed more than 8 times: keep the one we have */
			gnutls_certificate_free_credentials(x);
			x = NULL;
		}
		if (x) {
			h->health_cred = x;
			snprintf(h->health_ca, sizeof(h->health_ca), "%.255s", s->ca_file);
		}
	}
	dnscheck_use_settings(h, s);
	udpcheck_use_settings(h, s);
}

/* The settings read again and put in use when every one read. When one did not, the ones in use
 * stay rather than a default (another health_url, no CA, proxy_allow_local off), said once, and
 * the tick tries again every second (dbwatch tells a DB that reads again, not a read that failed
 * once); at the start there are none in use, so the defaults serve meanwhile. */
static void reschedule(struct healthd *h);

static void load_settings(struct healthd *h)
{
	struct health_settings s;
	unsigned iv = h->params.interval_ms, down_iv = h->params.down_interval_ms;
	const int first = !h->params.interval_ms; /* (no interval yet: the start) */
	char why[300];

	h->settings_tried_ms = ev_now_ms();
	if (read_settings(h, &s, why, sizeof(why)) < 0) {
		if (!h->settings_unread++)
			log_warnx("settings do not read (%s): probing on with %s", why,
				  first ? "their defaults until they do" : "the ones in use");
		if (!first)
			return;
	} else if (h->settings_unread) {
		log_info("settings read again");
		h->settings_unread = 0;
	}
	use_settings(h, &s);
	if (!first && (iv != h->params.interval_ms || down_iv != h->params.down_interval_ms)) {
		log_info("probing every %u s now (down: every %u s)", h->params.interval_ms / 1000,
			 h->params.down_interval_ms / 1000);
		reschedule(h);
	}
}

struct target *healthd_find(struct healthd *h, int64_t id)
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
	probe_cancel(h->t[i].early_probe);
	dnscheck_cancel(&h->t[i]);
	udpcheck_cancel(&h->t[i]);
	free(h->t[i].waiters);
	explicit_bzero(&h->t[i], sizeof(h->t[i]));
	h->t[i] = h->t[--h->n];
}

/* Where probes go: the resolved address unless the guard refuses it (proxy_allow_local). An
 * address that changes, or is refused now, ends every check in flight to the old one (none may
 * finish there, or test pipelining there, once the proxy is elsewhere); a refusal is due at once
 * and takes the proxy down at once (t->refused, start_probe); an address allowed again (the
 * setting turned on, say) is probed at once. */
static void target_guard(struct healthd *h, struct target *t)
{
	struct sockaddr_storage was = t->addr;
	int was_ok = t->addr_ok;
	const char *why;

	t->addr = t->resolved;
	t->addr_ok = t->resolved_ok && !t->resolving;
	t->refused = 0;
	snprintf(t->addr_why, sizeof(t->addr_why), "%s",
		 t->resolving ? "proxy host not resolved yet" : "proxy host does not resolve");
	if (t->addr_ok && !h->params.allow_local && (why = net_dest_refused(&t->addr, &h->params.lan))) {
		char at[NET_IP_STR_MAX];
		net_sa_ip_str(&t->addr, at);
		snprintf(t->addr_why, sizeof(t->addr_why), "proxy host %s is %s: refused (proxy_allow_local allows it)",
			 at, why);
		t->addr_ok = 0;
		t->refused = 1;
	}
	if (was_ok && (!t->addr_ok || memcmp(&was, &t->addr, sizeof(was)) != 0)) {
		probe_cancel(t->probe);
		t->probe = NULL;
		dnscheck_cancel(t);
		udpcheck_cancel(t);
		pipelining_forget(h, t, t->addr_ok ? "the proxy's address changed" : "the proxy's address is refused");
		t->next_due = ev_now_ms(); /* probed (or failed) again at once */
	} else if (!was_ok && t->addr_ok && !t->probe) {
		t->next_due = ev_now_ms();
	}
}

/* Asks t's name again when due: at most once a minute while it resolves (a name whose answers
 * rotate would otherwise move the proxy, ending its checks in flight, at every change of any
 * proxy), every 10 s while it does not (a resolver that failed at boot). */
static void ask_again(struct target *t, uint64_t now, int quiet)
{
	if (t->asked_ms && now - t->asked_ms < (t->resolved_ok ? HEALTHD_NAME_REFRESH_MS : HEALTHD_NAME_RETRY_MS))
		return;
	if (hostres_ask(t->host, t->port) == 0)
		t->asked_ms = now | 1;
	else if (!quiet) /* (the timer tries again in 250 ms: said once, when the proxy is loaded) */
		log_warnx("proxy %lld: the resolver's queue is full; '%s' is asked again later", (long long)t->id,
			  t->host);
}

/* Whether the proxy's host is a name (asked of hostres.c), not an address. */
static int host_is_name(const char *host)
{
	struct net_ip ip;

	return net_ip_parse(host, &ip) < 0 && strlen(host) <= NET_HOST_MAX; /* (the API allows 253) */
}

/* The proxy row's host and port: an address at once; a name keeps what it resolved to before
 * (the same name) while hostres.c asks again, off the loop, and a new one waits for its answer. */
static void target_host(struct healthd *h, struct target *t, const char *host, uint16_t port)
{
	struct net_ip ip;
	int same = t->port == port && strcmp(t->host, host) == 0;

	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = port;
	if (net_ip_parse(host, &ip) == 0) {
		net_ip_to_sa(&ip, port, &t->resolved);
		t->resolved_ok = 1;
		t->resolving = 0;
	} else if (strlen(host) > NET_HOST_MAX) { /* neither an address nor a name (host_is_name) */
		memset(&t->resolved, 0, sizeof(t->resolved));
		t->resolved_ok = t->resolving = 0;
	} else {
		if (!same) {
			memset(&t->resolved, 0, sizeof(t->resolved));
			t->resolved_ok = 0;
			t->resolving = 1;
			t->asked_ms = 0;
		}
		ask_again(t, ev_now_ms(), 0);
	}
	target_guard(h, t);
}

/* A name is asked again on a quiet gateway too, not only when a change reloads the proxies. */
static void name_refresh(struct target *t, uint64_t now)
{
	if (!t->resolving && t->asked_ms && host_is_name(t->host))
		ask_again(t, now, 1);
}

/* A name's answer (hostres.c): every proxy with that host and port takes it. */
static void on_resolved(void *arg, const char *host, uint16_t port, int ok, const struct sockaddr_storage *addr)
{
	struct healthd *h = arg;

	if (!host) /* the end of a batch */
		return;
	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		int was = t->resolving;
		if (t->port != port || strcmp(t->host, host) != 0)
			continue;
		if (!ok && was)
			log_warnx("proxy %lld: host '%s' does not resolve", (long long)t->id, host);
		t->resolved = *addr;
		t->resolved_ok = ok;
		t->resolving = 0;
		target_guard(h, t);
		if (was && !t->probe) /* it waited for this */
			t->next_due = ev_now_ms();
	}
}

/* What a probe proves of t changed (its type, endpoint, login or expected exits: proxy_health's
 * verify_gen, 0031, which made it unknown in the DB): nothing in flight is its proof, its counts
 * start over, and it is probed as it is now at once (a check asked meanwhile gets that probe). */
static void target_changed(struct healthd *h, struct target *t, int64_t gen)
{
	probe_cancel(t->probe);
	t->probe = NULL;
	dnscheck_cancel(t);
	udpcheck_cancel(t);
	memset(&t->hs, 0, sizeof(t->hs));
	t->exit_ip[0] = '\0';
	t->has_unsaved = 0;
	t->url_idx = 0;
	t->verify_gen = gen;
	t->next_due = ev_now_ms();
	log_info("proxy %lld (%s): changed: unknown until probed as it is now", (long long)t->id, t->name);
	(void)h;
}

/* Merge the enabled proxies from the DB into the target list; probes in flight carry on. */
static int load_targets(struct healthd *h)
{
	static const char *const sql =
	    "SELECT p.id, p.name, p.type, p.host, p.port, p.username, p.password, coalesce(h.status, 'unknown'), "
	    "coalesce(h.consecutive_failures, 0), coalesce(h.consecutive_successes, 0), coalesce(h.exit_ip, ''), "
	    "coalesce(h.pipelining, 0), coalesce(h.dns_status, 'unknown'), coalesce(h.udp, 'unknown'), "
	    "(SELECT value FROM org_settings s WHERE s.org_id = p.org_id AND s.key = 'health_url'), "
	    "(SELECT value FROM org_settings s WHERE s.org_id = p.org_id AND s.key = 'dns_upstream'), "
	    "p.expected_exit, p.org_id, coalesce(h.up_probes, 0), coalesce(h.early_data, 0), "
	    "coalesce(h.verify_gen, 0), coalesce(h.fresh_until, 0) < unixepoch() "
	    "FROM proxies p LEFT JOIN proxy_health h ON h.proxy_id = p.id WHERE p.enabled = 1";
	sqlite3_stmt *st = NULL;
	uint64_t now = ev_now_ms();
	int64_t dv = -1;
	int rc;

	db_data_version(h->d->db, &dv); /* before the read: a commit after it is seen (-1: unknown) */
	h->loaded_dv = -1;
	if (sqlite3_prepare_v2(h->d->db, sql, -1, &st, NULL) != SQLITE_OK) {
		if (!h->load_failing++) /* retried on every tick: said once per spell */
			log_error("load proxies: %s (read again on every tick until it works)",
				  sqlite3_errmsg(h->d->db));
		h->reload = 1;
		return -EIO;
	}
	for (size_t i = 0; i < h->n; i++)
		h->t[i].seen = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct target *t = healthd_find(h, id), nt;
		int fresh = !t;

		if (fresh) {
			if (h->n == h->cap) {
				size_t nc = h->cap ? h->cap * 2 : 64;
				struct target *p = realloc(h->t, nc * sizeof(*p));
				if (!p) {
					rc = SQLITE_NOMEM;
					break;
				}
				h->t = p;
				h->cap = nc;
			}
			memset(&nt, 0, sizeof(nt));
			t = &nt;
			t->id = id;
			t->next_due = now;
			t->hs.status = health_status_parse((const char *)sqlite3_column_text(st, 7));
			t->hs.fails = (unsigned)sqlite3_column_int(st, 8);
			t->hs.succs = (unsigned)sqlite3_column_int(st, 9);
			t->hs.ups = t->hs.status == HEALTH_UP ? (unsigned)sqlite3_column_int(st, 18) : 0;
			if (t->hs.status == HEALTH_UP && sqlite3_column_int(st, 21)) {
				/* up, but stale (healthd stopped, the proxy disabled a while): unknown, so
				 * that one failed probe cannot store it up and fresh again (fail_th > 1) */
				memset(&t->hs, 0, sizeof(t->hs));
			}
			t->verify_gen = sqlite3_column_int64(st, 20);
			snprintf(t->exit_ip, sizeof(t->exit_ip), "%s", (const char *)sqlite3_column_text(st, 10));
			t->pipelining = sqlite3_column_int(st, 11);
			t->early = sqlite3_column_int(st, 19);
			t->dns_status = strcmp((const char *)sqlite3_column_text(st, 12), "up") == 0	 ? 1
					: strcmp((const char *)sqlite3_column_text(st, 12), "down") == 0 ? 2
													 : 0;
			t->udp = strcmp((const char *)sqlite3_column_text(st, 13), "yes") == 0	? 1
				 : strcmp((const char *)sqlite3_column_text(st, 13), "no") == 0 ? 2
												: 0;
		}
		snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 1));
		{
			struct target old = *t;
			t->type = strcmp((const char *)sqlite3_column_text(st, 2), "http") == 0 ? UPSTREAM_HTTP
												: UPSTREAM_SOCKS5;
			target_host(h, t, (const char *)sqlite3_column_text(st, 3),
				    (uint16_t)sqlite3_column_int(st, 4));
			snprintf(t->user, sizeof(t->user), "%s", (const char *)sqlite3_column_text(st, 5));
			snprintf(t->pass, sizeof(t->pass), "%s", (const char *)sqlite3_column_text(st, 6));
			/* the organisation's own health URL; a bad one fails its proxies' probes, like a bad
			 * gateway one (the API refuses both) */
			t->own_url = sqlite3_column_type(st, 14) != SQLITE_NULL;
			t->n_urls = t->own_url ? net_http_url_list_parse((const char *)sqlite3_column_text(st, 14),
									 t->urls, NET_HTTP_URLS_MAX)
					       : 0;
			if (t->n_urls < 0)
				t->n_urls = 0;
			/* where it must leave from; a list that does not parse (written by hand: the API
			 * refuses it) expects an exit nothing can have: the proxy goes down, never unchecked */
			t->n_expect = net_prefix_list_parse((const char *)sqlite3_column_text(st, 16), t->expect,
							    HEALTHD_EXPECT_MAX);
			t->expect_broken = t->n_expect < 0;
			if (t->n_expect < 0) {
				log_warnx("proxy %lld: expected_exit does not parse: every exit is a mismatch",
					  (long long)t->id);
				memset(&t->expect[0], 0, sizeof(t->expect[0]));
				t->expect[0].len = 128; /* (exit_expected() refuses every exit) */
				t->n_expect = 1;
			}
			t->org_id = sqlite3_column_int64(st, 17);
			/* its organisation's resolvers, for the DNS check (none usable: the check fails) */
			t->dns_own = sqlite3_column_type(st, 15) != SQLITE_NULL;
			t->dns_n = 0;
			if (t->dns_own) {
				char e[200];
				int k = dns_upstreams_parse((const char *)sqlite3_column_text(st, 15), t->dns_up,
							    DNS_UPSTREAMS_MAX, e, sizeof(e));
				t->dns_n = k > 0 ? k : 0;
			}
			if (!fresh &&
			    (old.type != t->type || strcmp(old.user, t->user) != 0 || strcmp(old.pass, t->pass) != 0))
				pipelining_forget(h, t, "the proxy changed");
			if (!fresh && sqlite3_column_int64(st, 20) != t->verify_gen)
				target_changed(h, t, sqlite3_column_int64(st, 20));
			explicit_bzero(&old, sizeof(old));
		}
		t->seen = 1;
		if (fresh) {
			h->t[h->n++] = nt;
			explicit_bzero(&nt, sizeof(nt));
		}
	}
	sqlite3_finalize(st);
	h->reload = rc != SQLITE_DONE;
	if (h->reload) { /* read in part (busy, I/O, memory): the proxies not read yet are kept */
		if (!h->load_failing++)
			log_error("load proxies: %s (read again on every tick until it works)", sqlite3_errstr(rc));
		return -EIO;
	}
	if (h->load_failing)
		log_info("load proxies: works again (after %u failed tries)", h->load_failing);
	h->load_failing = 0;
	h->loaded_dv = dv;
	for (size_t i = 0; i < h->n;) /* deleted or disabled proxies */
		if (!h->t[i].seen)
			drop_target(h, i);
		else
			i++;
	return 0;
}

static void reply_waiters(struct healthd *h, struct target *t, const struct probe_result *r)
{
	struct notify_msg m = {
	    .type = NOTIFY_CHECK_RESULT, .id = t->id, .status = r->error == PROBE_OK, .value = (int32_t)r->total_ms};

	snprintf(m.text, sizeof(m.text), "%.59s", r->error == PROBE_OK ? r->exit_ip : r->reason);
	for (size_t i = 0; i < t->n_waiters; i++)
		notify_send(h->d->nt, t->waiters[i], &m);
	t->n_waiters = 0;
}

/* The exit address is one the proxy may leave from (any, when it names none). */
static int exit_expected(const struct target *t, const char *exit_ip)
{
	struct net_ip ip;

	if (t->expect_broken)
		return 0;
	if (t->n_expect == 0)
		return 1;
	if (net_ip_parse(exit_ip, &ip) < 0)
		return 0;
	for (int i = 0; i < t->n_expect; i++)
		if (net_prefix_contains(&t->expect[i], &ip))
			return 1;
	return 0;
}

/* An audit row of pgw-healthd's own: a proxy taken down for leaving from the wrong address. */
static void audit_mismatch(struct healthd *h, const struct target *t, const char *seen)
{
	char oid[24], after[160];
	struct audit_entry e = {.username = "pgw-healthd",
				.remote_addr = "",
				.action = "proxy.exit_ip_mismatch",
				.object_type = "proxy",
				.object_id = oid,
				.after_json = after,
				.result = "failed",
				.org_id = t->org_id};

	snprintf(oid, sizeof(oid), "%lld", (long long)t->id);
	snprintf(after, sizeof(after), "{\"exit_ip\":\"%.46s\",\"status\":\"down\"}", seen);
	if (audit_record(h->d->db, &e) < 0)
		log_warnx("proxy %lld: cannot write the audit row of its exit mismatch", (long long)t->id);
}

static void tell_enforcers(struct healthd *h, int64_t id)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = id};

	notify_send(h->d->nt, "agent", &m);
	notify_send(h->d->nt, "forwarder", &m);
}

static uint64_t next_interval(const struct healthd *h, const struct target *t)
{
	return t->hs.status == HEALTH_DOWN ? h->params.down_interval_ms : h->params.interval_ms;
}

/* The intervals changed: a shorter one counts from each proxy's last result (it must not wait
 * out the old one: down detection would lag by it). A longer one starts after the probe already
 * due, which writes fresh_until by it: deferring that probe would let the stored result go stale
 * first and block the proxy's clients until it ran. */
static void reschedule(struct healthd *h)
{
	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		uint64_t due = t->done_at + next_interval(h, t);

		if (t->done_at && due < t->next_due)
			t->next_due = due;
	}
}

/* A probe's outcome: hysteresis, the DB, notifications, waiting requesters, next due time. */
static void apply_result(struct healthd *h, struct target *t, const struct probe_result *r)
{
	enum health_status old = t->hs.status;
	struct probe_result mm;
	int ok = r->error == PROBE_OK, moved = 0, audit = 0;

	if (ok && !exit_expected(t, r->exit_ip)) { /* it works, but leaves from elsewhere: down at once */
		mm = *r;
		mm.error = PROBE_EXIT_MISMATCH;
		snprintf(mm.reason, sizeof(mm.reason), "exit_ip_mismatch (seen %s)", r->exit_ip);
		r = &mm;
		ok = 0;
		snprintf(t->exit_ip, sizeof(t->exit_ip), "%.45s", r->exit_ip); /* expected against seen */
		t->hs.status = HEALTH_DOWN;
		t->hs.fails = h->params.fail_th;
		t->hs.succs = 0;
		t->hs.ups = 0;
		/* (audited once stored: a result of the proxy as it was is dropped) */
		audit = old != HEALTH_DOWN || strncmp(t->unsaved.reason, "exit_ip_mismatch", 16) != 0;
	} else {
		hysteresis_step(&t->hs, ok, h->params.fail_th, h->params.succ_th);
	}
	if (ok) {
		if (old == HEALTH_UP && t->exit_ip[0] && strcmp(t->exit_ip, r->exit_ip) != 0)
			log_info("proxy %lld (%s): exit ip changed %s -> %s", (long long)t->id, t->name, t->exit_ip,
				 r->exit_ip);
		snprintf(t->exit_ip, sizeof(t->exit_ip), "%s", r->exit_ip);
	}
	t->unsaved = *r;
	t->unsaved_at = time(NULL);
	snprintf(t->unsaved_host, sizeof(t->unsaved_host), "%s", t->host);
	t->unsaved_port = t->port;
	t->unsaved_addr[0] = '\0';
	if (ok && t->addr_ok) /* (probes to an address are ended when it changes: this is the probe's) */
		net_sa_ip_str(&t->addr, t->unsaved_addr);
	switch (store_result(h, t, r, t->unsaved_at, &moved)) {
	case -ESTALE: /* the proxy changed since this probe began (0031): not its proof. The reload at
		       * the next tick starts it over (target_changed) or drops it (deleted); whoever
		       * asked waits for the probe of it as it is now */
		t->has_unsaved = 0;
		h->reload = 1;
		log_info("proxy %lld (%s): changed while probed: its result dropped, probed again", (long long)t->id,
			 t->name);
		return;
	case 0:
		t->has_unsaved = 0;
		break;
	default:
		t->has_unsaved = 1;
	}
	if (audit)
		audit_mismatch(h, t, r->exit_ip);
	if (old != t->hs.status || moved)
		tell_enforcers(h, t->id); /* they act on status changes and failover moves: now */
	if (old != t->hs.status) {
		log_info("proxy %lld (%s): %s -> %s (%s, %u ms%s%s)", (long long)t->id, t->name, health_status_str(old),
			 health_status_str(t->hs.status), r->reason, r->total_ms, ok ? ", exit " : "",
			 ok ? r->exit_ip : "");
	} else {
		log_debug("proxy %lld (%s): %s, %s, %u ms", (long long)t->id, t->name, health_status_str(t->hs.status),
			  r->reason, r->total_ms);
	}
	h->api_dirty = 1;
	reply_waiters(h, t, r);
	if (ok) {
		pipelining_test(h, t);
		dnscheck_start(h, t);
		udpcheck_start(h, t);
	}
	t->done_at = ev_now_ms();
	t->next_due = t->done_at + next_interval(h, t);
}

static void start_probe(struct healthd *h, struct target *t);

/* A failure that another health URL may not have: everything but the proxy's own refusal. */
static int dest_failure(const struct probe_result *r)
{
	switch (r->error) {
	case PROBE_HTTP_STATUS:
	case PROBE_BAD_HTTP:
	case PROBE_UNPARSEABLE_BODY:
	case PROBE_TLS:
		return 1;
	case PROBE_UPSTREAM: /* the proxy could not reach it (SOCKS5 reply, HTTP 5xx to CONNECT) */
		return r->up == UP_ERR_PROXY_REFUSED;
	case PROBE_TIMEOUT: /* only once the proxy had done its part: not its greeting or auth */
		return strcmp(r->reason, "timeout (response)") == 0 || strcmp(r->reason, "timeout (tls)") == 0;
	default:
		return 0;
	}
}

/* The first of t's health URLs from `from` on that may judge it, or -1. A proxy with an expected
 * exit (exit pinning) is judged by its https URLs alone when it has any: over plain http the
 * proxy itself can forge the answer (the exit address in the body), over https it cannot; so a
 * TLS failure never falls through to an http URL that would then say up. */
static int next_url(const struct healthd *h, const struct target *t, int from)
{
	const struct net_http_url *u = t->own_url ? t->urls : h->urls;
	int n = t->own_url ? t->n_urls : h->n_urls, any_tls = 0;

	for (int k = 0; k < n; k++)
		any_tls |= u[k].tls;
	for (int k = from; k < n; k++)
		if (!t->n_expect || !any_tls || u[k].tls)
			return k;
	return -1;
}

static void on_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		if (t->probe != p)
			continue;
		t->probe = NULL;
		/* several health URLs: the next one, when this one failed at the destination (not
		 * at the proxy itself); up when any answers */
		if (r->error != PROBE_OK && dest_failure(r) && next_url(h, t, t->url_idx + 1) >= 0) {
			t->url_idx = next_url(h, t, t->url_idx + 1);
			start_probe(h, t); /* the probe, or a failure applied at once */
			return;
		}
		t->ok_url_idx = r->error == PROBE_OK ? t->url_idx : 0; /* the pipelining test asks that one */
		t->url_idx = 0;
		apply_result(h, t, r);
		return;
	}
}

static void start_probe(struct healthd *h, struct target *t)
{
	struct probe_result fail = {.error = PROBE_INTERNAL};
	int n_urls = t->own_url ? t->n_urls : h->n_urls;

	if (t->probe)
		return;
	if (t->resolving) { /* its name has no answer yet (asked again: the queue may have been full) */
		if (!t->asked_ms && hostres_ask(t->host, t->port) == 0)
			t->asked_ms = ev_now_ms() | 1;
		/* a check asked meanwhile waits for the answer (the probe follows it at once), unless the
		 * resolver has taken longer than a probe may, or could not be asked */
		if (t->n_waiters && (!t->asked_ms || ev_now_ms() - t->asked_ms > h->params.timeout_ms)) {
			snprintf(fail.reason, sizeof(fail.reason), "proxy host not resolved yet");
			fail.error = PROBE_UPSTREAM;
			reply_waiters(h, t, &fail);
		}
		return;
	}
	if (!t->addr_ok || !n_urls) {
		fail.error = PROBE_UPSTREAM;
		fail.up = UP_ERR_CONNECT;
		snprintf(fail.reason, sizeof(fail.reason), "%s", !t->addr_ok ? t->addr_why : "bad health_url");
		t->url_idx = 0;
		/* not a failure to count towards down: down now */
		if (t->refused && t->hs.fails + 1 < h->params.fail_th)
			t->hs.fails = h->params.fail_th - 1;
		apply_result(h, t, &fail);
		return;
	}
	if (next_url(h, t, t->url_idx) > t->url_idx) /* (the first, for a pinned proxy: its first https one) */
		t->url_idx = next_url(h, t, t->url_idx);
	t->probe = probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass, 0,
			       &(t->own_url ? t->urls : h->urls)[t->url_idx % n_urls], h->health_cred,
			       h->params.timeout_ms, on_probe_done, h);
	if (!t->probe) { /* (out of sockets, say) this end's trouble, not the proxy's: no result, tried again
			  * each tick; whoever asked for a check now hears why at once */
		struct probe_result why = {.error = PROBE_INTERNAL};

		snprintf(why.reason, sizeof(why.reason), "cannot start a probe");
		t->url_idx = 0;
		log_warn("proxy %lld: cannot start a probe", (long long)t->id);
		reply_waiters(h, t, &why);
	}
}

static void on_tick(struct evloop *ev, void *arg)
{
	struct healthd *h = arg;
	uint64_t now = ev_now_ms();

	(void)ev;
	/* settings that did not read: in use once they do, with what they change */
	if (h->settings_unread && now - h->settings_tried_ms >= 1000) {
		load_settings(h);
		if (!h->settings_unread) {
			h->reload = 1;
			pipelining_apply_setting(h);
		}
	}
	if (h->reload)
		load_targets(h);
	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];

		int moved = 0;

		if (t->has_unsaved) {
			int sr = store_result(h, t, &t->unsaved, t->unsaved_at, &moved);
			if (sr == 0 || sr == -ESTALE) /* stored, or of the proxy as it was (dropped) */
				t->has_unsaved = 0;
			if (sr == 0 && moved)
				tell_enforcers(h, t->id);
			if (sr == -ESTALE)
				h->reload = 1;
		}
		pipelining_retry(h, t);
		if (!t->probe && now >= t->next_due)
			start_probe(h, t);
		name_refresh(t, now);
	}
	if (h->api_dirty) { /* latency and history for the dashboard: at most 4 a second */
		struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH};
		notify_send(h->d->nt, "api", &m);
		h->api_dirty = 0;
	}
}

/* Remember who waits for the probe in flight (once each). */
static void add_waiter(struct target *t, const char *from)
{
	for (size_t i = 0; i < t->n_waiters; i++)
		if (strcmp(t->waiters[i], from) == 0)
			return;
	if (t->n_waiters == t->cap_waiters) {
		size_t nc = t->cap_waiters ? t->cap_waiters * 2 : 8;
		char(*p)[NOTIFY_NAME_MAX] = realloc(t->waiters, nc * sizeof(*p));
		if (!p) {
			log_warnx("proxy %lld: out of memory for check requests", (long long)t->id);
			return;
		}
		t->waiters = p;
		t->cap_waiters = nc;
	}
	snprintf(t->waiters[t->n_waiters++], NOTIFY_NAME_MAX, "%s", from);
}

/* Whether another connection committed since the proxies were last read in full (PRAGMA
 * data_version: healthd's own writes do not count). A burst of asks about proxies it does not
 * know (a CSV import's gate asks about 8 side by side) reads them once, not once per ask. */
static int targets_may_be_stale(struct healthd *h)
{
	int64_t dv;

	return h->loaded_dv < 0 || db_data_version(h->d->db, &dv) < 0 || dv != h->loaded_dv;
}

static void check_now(struct healthd *h, int64_t id, const char *from)
{
	struct target *t = healthd_find(h, id);

	if (!t && targets_may_be_stale(h)) { /* perhaps created a moment ago */
		load_targets(h);
		t = healthd_find(h, id);
	}
	if (!t) {
		struct notify_msg m = {.type = NOTIFY_CHECK_RESULT, .id = id, .status = 0};
		snprintf(m.text, sizeof(m.text), "unknown or disabled proxy");
		if (from && *from)
			notify_send(h->d->nt, from, &m);
		return;
	}
	if (from && *from) /* any number of concurrent requests share one probe */
		add_waiter(t, from);
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
		struct target *t = healthd_find(h, msg->id);
		log_info("proxy %lld: the forwarder saw it fail (%s); checking now", (long long)msg->id, msg->text);
		if (t) {
			pipelining_forget(h, t, "the forwarder saw it fail");
			start_probe(h, t);
		}
		return;
	}
	if (msg && (msg->type != NOTIFY_CHANGED || !(msg->topics & (TOPIC_PROXIES | TOPIC_SETTINGS))))
		return;
	load_settings(h);
	load_targets(h);
	pipelining_apply_setting(h);
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
		sqlite3_busy_timeout(d.db, HEALTHD_DB_BUSY_MS);
		if ((r = hostres_start(d.ev, on_resolved, &h)) < 0) /* (named proxies would wait for ever) */
			log_error("cannot start the resolver thread for proxy names: %s", strerror(-r));
		load_settings(&h);
		load_targets(&h);
		pipelining_apply_setting(&h);
		log_info("probing %zu proxies every %u s (down: every %u s), timeout %u s per step", h.n,
			 h.params.interval_ms / 1000, h.params.down_interval_ms / 1000, h.params.timeout_ms / 1000);
		h.tick = r < 0 ? NULL : ev_add_timer(d.ev, 0, TICK_MS, on_tick, &h);
		r = h.tick ? (daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK) : DAEMON_EXIT_FAIL;
		while (h.n)
			drop_target(&h, 0);
	}
	free(h.t);
	if (h.health_cred)
		gnutls_certificate_free_credentials(h.health_cred);
	for (int i = 0; i < h.n_retired; i++)
		gnutls_certificate_free_credentials(h.retired[i]);
	dnscheck_fini(&h);
	daemon_fini(&d);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
