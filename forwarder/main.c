/* pgw-forwarder - relays each mapped LAN client's TCP (REDIRECTed by pgw-agent) through that
 * client's own upstream proxy. Unknown or blocked clients are closed at once (fail closed).
 * The mapping table is reloaded on notify, on the polling fallback and on SIGHUP without
 * touching established connections. Stats and open connections: asked for on its control socket
 * PGW_RUN_DIR/forwarder.ctl (control.c, fwdctl.h). */
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "relay.h"
#include "resolver.h"
#include "udprelay.h"
#include "workers.h"
#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WORKERS 16 /* one per CPU, unless PGW_FORWARDER_WORKERS says (up to 64) */

#define RELOAD_RETRY_MS 1000
/* Reloads failing this long (the DB unreadable, a table of it renamed or damaged): every client is
 * blocked until one succeeds, as pgw-agent blocks them in the kernel (its UNDECIDED_MAX_MS). The
 * kernel's block alone leaves the DNS that every LAN device sends the resolver (dns_mode=proxy)
 * answered through proxies as the last table had them, whose health or exit may have changed. */
#define UNREAD_MAX_MS 5000

struct forwarder {
	struct daemon *d;
	struct fwd_shared sh;
	struct fwd_workers *workers;
	struct resolver *resolver;
	struct udprelay *udp;
	struct control *control;
	unsigned n_workers;
	struct ev_handle *retry; /* a reload that failed is tried again (no change may come to ask) */
	unsigned reload_failing; /* reloads failed in a row */
	uint64_t failing_since;	 /* ... since (ev_now_ms) */
	int64_t blind_since;	 /* ... for UNREAD_MAX_MS: every client blocked (block_all), and since when the
				  * reloads failed (CLOCK_REALTIME ms; 0: not blocked); changed under sh.lock
				  * (the control thread's stats read it) */
};

/* Organisations' own resolvers (org_settings); one that does not parse (written by hand: the
 * API refuses it) leaves that organisation's clients without DNS (SERVFAIL). More than
 * FWD_DNS_ORGS_MAX (only by hand: the API refuses it) leaves the rest on the gateway's, logged. */
static void load_org_dns(struct forwarder *f, struct fwd_dns *dns)
{
	sqlite3_stmt *st = NULL;
	char err[256];

	if (sqlite3_prepare_v2(f->d->db,
			       "SELECT org_id, value FROM org_settings WHERE key = 'dns_upstream' ORDER BY org_id", -1,
			       &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct fwd_dns_org *o;
		int n;
		if (dns->n_orgs == FWD_DNS_ORGS_MAX) {
			log_warnx("more than %d organisations with resolvers of their own: the rest get none",
				  FWD_DNS_ORGS_MAX);
			break;
		}
		o = &dns->orgs[dns->n_orgs++];
		o->org = sqlite3_column_int64(st, 0);
		n = dns_upstreams_parse((const char *)sqlite3_column_text(st, 1), o->up, DNS_UPSTREAMS_MAX, err,
					sizeof(err));
		o->n = n > 0 ? n : 0;
		if (n <= 0)
			log_warnx("organisation %lld: dns_upstream unusable (%s): its clients get SERVFAIL",
				  (long long)o->org, err);
	}
	sqlite3_finalize(st);
}

static void load_dns(struct forwarder *f, struct fwd_dns *dns)
{
	char v[SETTINGS_VALUE_MAX], err[256];
	int n;

	memset(dns, 0, sizeof(*dns));
	settings_str(f->d->db, &f->d->cfg, "dns_upstream", v, sizeof(v)); /* valid, or the default */
	n = dns_upstreams_parse(v, dns->up, DNS_UPSTREAMS_MAX, err, sizeof(err));
	dns->n = n > 0 ? n : 0;
	dns->query_log = settings_bool(f->d->db, &f->d->cfg, "dns_query_log");
	load_org_dns(f, dns);
	/* a new generation (new connections, an empty cache) only when the resolvers or the query log
	 * setting change, not on every mapping reload */
	dns->gen = f->sh.dns.gen + (dns->n != f->sh.dns.n || memcmp(dns->up, f->sh.dns.up, sizeof(dns->up)) != 0 ||
				    dns->query_log != f->sh.dns.query_log || dns->n_orgs != f->sh.dns.n_orgs ||
				    memcmp(dns->orgs, f->sh.dns.orgs, sizeof(dns->orgs)) != 0);
}

static void load_limits(struct forwarder *f, struct fwd_limits *l)
{
	l->connect_timeout_ms = settings_uint(f->d->db, &f->d->cfg, "forwarder_connect_timeout") * 1000;
	l->idle_timeout_ms = settings_uint(f->d->db, &f->d->cfg, "forwarder_idle_timeout") * 1000;
	l->max_connections = settings_uint(f->d->db, &f->d->cfg, "forwarder_max_connections");
	l->client_max_conns = settings_uint(f->d->db, &f->d->cfg, "client_max_conns");
	l->client_conns_per_s = settings_uint(f->d->db, &f->d->cfg, "client_new_conns_per_s");
	l->drain_timeout_ms = settings_uint(f->d->db, &f->d->cfg, "forwarder_drain_timeout") * 1000;
	l->udp_on = (unsigned)settings_bool(f->d->db, &f->d->cfg, "udp_relay");
	l->udp_flow_ms = settings_uint(f->d->db, &f->d->cfg, "udp_flow_timeout") * 1000;
	l->udp_session_ms = settings_uint(f->d->db, &f->d->cfg, "udp_session_timeout") * 1000;
	l->udp_client_flows = settings_uint(f->d->db, &f->d->cfg, "udp_client_flows");
	l->udp_client_pps = settings_uint(f->d->db, &f->d->cfg, "udp_client_pps");
	l->proxy_allow_local = (unsigned)settings_bool(f->d->db, &f->d->cfg, "proxy_allow_local");
	settings_lan(f->d->db, &f->d->cfg, &l->lan);
}

static int64_t org_now(void *arg, const struct net_ip *ip)
{
	const struct fwd_entry *e = table_lookup(arg, ip);

	return e ? e->org_id : 0;
}

static void quota_of(const struct fwd_entry *e, void *arg)
{
	stats_quota_set(arg, &e->client, e->state == FWD_ACTIVE ? e->quota_limit : 0, e->quota_used, e->seen_run,
			e->seen_total);
}

/* No mappings read for UNREAD_MAX_MS: the current table's clients all blocked, in place (their
 * organisations and counts stay), and what they have open cut, as a reload that blocked them
 * would. A reload that succeeds replaces the table. */
static void block_all(struct forwarder *f)
{
	struct timespec ts;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_rwlock_wrlock(&f->sh.lock);
	n = table_block_all(f->sh.table);
	atomic_fetch_add(&f->sh.table_gen, 1);
	f->blind_since = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)(ev_now_ms() - f->failing_since);
	pthread_rwlock_unlock(&f->sh.lock);
	log_error("no mappings read for %d s: every client blocked (%zu were active; their connections cut, DNS "
		  "SERVFAIL) until they are read again",
		  UNREAD_MAX_MS / 1000, n);
	workers_revalidate(f->workers);
	udprelay_revalidate(f->udp);
}

static int reload(struct forwarder *f, const char *why)
{
	struct fwd_table *t = NULL, *old;
	struct fwd_limits l = {0};
	struct fwd_dns dns;
	char err[512];
	const int was_blind = f->blind_since != 0;
	int r;

	settings_read_begin();
	load_limits(f, &l);
	r = table_load(f->d->db, l.proxy_allow_local ? NULL : &l.lan, &t, err, sizeof(err));
	if (r == 0) {
		load_dns(f, &dns);
		if (settings_read_end() < 0) { /* a default stood in for what the DB says */
			snprintf(err, sizeof(err), "a setting could not be read (its default is no answer here)");
			table_free(t);
			r = -EIO;
		}
	}
	if (r < 0) {
		if (!f->reload_failing++) { /* said once; tried again every second */
			f->failing_since = ev_now_ms();
			log_error("reload (%s) failed, keeping the current table (trying again every second; every "
				  "client blocked if none works for %d s): %s",
				  why, UNREAD_MAX_MS / 1000, err);
		} else if (!f->blind_since && ev_now_ms() - f->failing_since >= UNREAD_MAX_MS) {
			block_all(f);
		}
		return -EIO;
	}
	/* back from block_all: answers that came meanwhile (a query in flight is answered to nobody
	 * once blocked, but its answer is cached) go, with the connections of before */
	dns.gen += (uint64_t)was_blind && dns.gen == f->sh.dns.gen;
	pthread_rwlock_wrlock(&f->sh.lock);
	old = f->sh.table;
	f->sh.table = t;
	f->sh.limits = l;
	f->sh.dns = dns;
	f->blind_since = 0;
	/* under the write lock: no worker tags a client's counts from the new table before the
	 * rebind has started them over (the tag would then match and an old owner's counts stay) */
	stats_clients_rebind(&f->sh.stats, org_now, t);
	atomic_fetch_add(&f->sh.table_gen, 1); /* with the table, under the lock: read together */
	pthread_rwlock_unlock(&f->sh.lock);
	table_free(old); /* lookups copy their entry under the lock: nobody holds old entries */
	table_foreach(t, quota_of, &f->sh.stats); /* each client's quota left, from the DB's count */
	log_info("mappings loaded (%s): %zu clients%s", why, table_size(t),
		 was_blind	     ? " (recovered: clients relayed again as the table says)"
		 : f->reload_failing ? " (recovered)"
				     : "");
	f->reload_failing = 0;
	workers_revalidate(f->workers); /* cut what the new table no longer allows */
	udprelay_revalidate(f->udp);
	return 0;
}

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	struct forwarder *f = d->priv;
	const uint32_t relevant = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS;

	if (msg && (msg->type != NOTIFY_CHANGED || !(msg->topics & relevant)))
		return;
	if (reload(f, msg ? "event" : from) < 0 && f->retry)
		ev_timer_set(f->retry, RELOAD_RETRY_MS, 0); /* (no change may come to ask) */
}

static void on_retry(struct evloop *ev, void *arg)
{
	struct forwarder *f = arg;

	(void)ev;
	if (!f->reload_failing) /* a change's reload made it good meanwhile */
		return;
	if (reload(f, "retry") < 0)
		ev_timer_set(f->retry, RELOAD_RETRY_MS, 0);
}

static void write_more_stats(void *arg, FILE *out)
{
	struct forwarder *f = arg;

	resolver_write_stats(f->resolver, out);
	udprelay_write_stats(f->udp, out);
}

/* The control socket's "stats" (its thread): the counters are atomics or locked, the table is
 * read under the lock (a reload swaps it). */
static void write_stats(void *arg, FILE *out)
{
	struct forwarder *f = arg;
	struct stats_header h = {
	    .workers = f->n_workers, .port = f->sh.port, .extra = write_more_stats, .extra_arg = f};

	pthread_rwlock_rdlock(&f->sh.lock);
	h.mappings = table_size(f->sh.table);
	h.unread_since = f->blind_since;
	pthread_rwlock_unlock(&f->sh.lock);
	stats_write(&f->sh.stats, &h, out);
}

/* Stopping: tell pgw-api to ask for the last counts now, and wait (5 s at most: it asks at once
 * unless its main thread is held up, by a DB lock say) until its feed has ("stats for=usage":
 * another ask, /metrics or the clients list, writes no history), so what was moved since its
 * last look (and during the drain) reaches the usage history and the quotas. */
static void final_stats(struct forwarder *f, struct daemon *d)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_FORWARDER};
	unsigned long n0 = control_served(f->control);

	if (!f->control || !d->nt || notify_send(d->nt, "api", &m) < 0)
		return;
	for (int i = 0; i < 100 && control_served(f->control) == n0; i++)
		usleep(50 * 1000);
}

/* A loop that has not ticked for this long (each ticks once a second) has stopped. */
#define LOOP_STALL_S	      10
#define LOOP_STALL_TEXT(loop) loop "'s loop has not run for over " STR(LOOP_STALL_S) " s"
#define STR(x)		      STR_(x)
#define STR_(x)		      #x

/* Which of the forwarder's loops has stopped (a sentence), or NULL while all run: the systemd
 * watchdog's question and `pgwctl ha check`'s (the control socket's "ping", from its thread). */
static const char *stalled(void *arg)
{
	struct forwarder *f = arg;

	if (!workers_alive(f->workers, LOOP_STALL_S * 1000))
		return LOOP_STALL_TEXT("a TCP worker");
	if (!resolver_alive(f->resolver, LOOP_STALL_S * 1000))
		return LOOP_STALL_TEXT("the DNS resolver");
	if (!udprelay_alive(f->udp, LOOP_STALL_S * 1000))
		return LOOP_STALL_TEXT("the UDP relay");
	return NULL;
}

static int alive(struct daemon *d)
{
	return !stalled(d->priv);
}

static const struct daemon_info info = {
    .name = "pgw-forwarder",
    .sock_name = "forwarder",
    .summary = "Relays each LAN client's TCP through its own upstream proxy (SOCKS5 or HTTP CONNECT).",
    .on_change = on_change,
    .watch_sql = DBWATCH_ENFORCEMENT_SQL, /* proxies, mappings, health status, settings, staleness */
    .watch_topics = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS,
    .alive = alive,
    .net_admin = 1, /* TPROXY and the UDP relay (transparent sockets), when given */
};

int main(int argc, char **argv)
{
	struct forwarder f;
	struct daemon d;
	char err[512];
	long cpus;
	int r;

	memset(&f, 0, sizeof(f));
	pthread_rwlock_init(&f.sh.lock, NULL);
	stats_init(&f.sh.stats); /* without memory for per-client counters, only the totals */
	{ /* connection ids: from the start time in microseconds, so that an id (or a cursor) from
	   * an earlier run never names a connection of this one; below 2^53 (JSON numbers) */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		atomic_store(&f.sh.next_conn_id,
			     (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	}
	if (destfail_init(&f.sh.destfail) < 0) {
		log_error("cannot set up the destination failure counts");
		return 1;
	}
	r = daemon_init(&d, &info, argc, argv);
	if (r == DAEMON_CONTINUE) {
		f.d = &d;
		d.priv = &f;
		f.sh.run_dir = d.cfg.run_dir;
		f.sh.port = d.cfg.forwarder_port;
		f.sh.tproxy_port = d.cfg.tproxy_port;
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		f.n_workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
		if (d.cfg.forwarder_workers)
			f.n_workers = d.cfg.forwarder_workers;
		daemon_raise_nofile();
		if (reload(&f, "start") < 0 || workers_start(&f.sh, f.n_workers, &f.workers, err, sizeof(err)) < 0 ||
		    resolver_start(&f.sh, d.cfg.dns_port, d.cfg.dns_tls_ca, &f.resolver, err, sizeof(err)) < 0 ||
		    udprelay_start(&f.sh, f.sh.tproxy_port, &f.udp) < 0) {
			log_error("%s", f.sh.table ? err : "cannot load the mappings");
			resolver_stop(f.resolver);
			udprelay_stop(f.udp);
			workers_stop(f.workers);
			f.workers = NULL;
			r = DAEMON_EXIT_FAIL;
		} else {
			log_info("listening on port %u (REDIRECT), %u (TPROXY) and %u (DNS) with %u workers", f.sh.port,
				 f.sh.tproxy_port, d.cfg.dns_port, f.n_workers);
			const struct control_ops ctl_ops = {.stats = write_stats, .stalled = stalled, .arg = &f};
			/* without it pgw-api has no stats: no usage history, no quota accounting; fail
			 * (systemd starts it again) rather than relay uncounted */
			if (control_start(&f.sh, f.workers, &ctl_ops, &f.control, err, sizeof(err)) < 0) {
				log_error("%s", err);
				r = DAEMON_EXIT_FAIL;
			} else {
				/* armed only when a reload fails; without it a failing reload would wait for
				 * the next change, and block_all for one after its 5 s: fail */
				if (!(f.retry = ev_add_timer(d.ev, RELOAD_RETRY_MS, 0, on_retry, &f))) {
					log_error("cannot make the reload retry timer");
					r = DAEMON_EXIT_FAIL;
				} else {
					ev_timer_stop(f.retry);
					r = daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK;
				}
			}
			log_info("draining open connections (up to %u s)", f.sh.limits.drain_timeout_ms / 1000);
			workers_join(f.workers); /* the control socket still answers: the drain is counted */
			final_stats(&f, &d);
			control_stop(f.control);
			f.control = NULL;
			resolver_stop(f.resolver);
			f.resolver = NULL;
			udprelay_stop(f.udp);
			f.udp = NULL;
			workers_stop(f.workers);
		}
	}
	table_free(f.sh.table);
	stats_fini(&f.sh.stats);
	destfail_fini(&f.sh.destfail);
	daemon_fini(&d);
	pthread_rwlock_destroy(&f.sh.lock);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
