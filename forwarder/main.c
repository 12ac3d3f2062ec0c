/* pgw-forwarder - relays each mapped LAN client's TCP (REDIRECTed by pgw-agent) through that
 * client's own upstream proxy. Unknown or blocked clients are closed at once (fail closed).
 * The mapping table is reloaded on notify, on the polling fallback and on SIGHUP without
 * touching established connections. Stats: PGW_RUN_DIR/forwarder.stats.json, every second. */
#include "daemon.h"
#include "fwdstats.h"
#include "log.h"
#include "relay.h"
#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATS_MS 1000
#define MAX_WORKERS 16

struct forwarder {
	struct daemon *d;
	struct fwd_shared sh;
	struct fwd_workers *workers;
	unsigned n_workers;
	struct ev_handle *stats_timer;
};

static void load_limits(struct forwarder *f, struct fwd_limits *l)
{
	l->connect_timeout_ms = settings_get_uint(f->d->db, "forwarder_connect_timeout", 10) * 1000;
	l->idle_timeout_ms = settings_get_uint(f->d->db, "forwarder_idle_timeout", 900) * 1000;
	l->max_connections = settings_get_uint(f->d->db, "forwarder_max_connections", 20000);
	l->drain_timeout_ms = settings_get_uint(f->d->db, "forwarder_drain_timeout", 10) * 1000;
}

static int reload(struct forwarder *f, const char *why)
{
	struct fwd_table *t = NULL, *old;
	struct fwd_limits l;
	char err[512];

	if (table_load(f->d->db, &t, err, sizeof(err)) < 0) {
		log_error("reload (%s) failed, keeping the current table: %s", why, err);
		return -EIO;
	}
	load_limits(f, &l);
	pthread_rwlock_wrlock(&f->sh.lock);
	old = f->sh.table;
	f->sh.table = t;
	f->sh.limits = l;
	pthread_rwlock_unlock(&f->sh.lock);
	table_free(old); /* lookups copy their entry under the lock: nobody holds old entries */
	log_info("mappings loaded (%s): %zu clients", why, table_size(t));
	relay_revalidate(f->workers); /* cut what the new table no longer allows */
	return 0;
}

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	struct forwarder *f = d->priv;
	const uint32_t relevant = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS;

	if (msg && (msg->type != NOTIFY_CHANGED || !(msg->topics & relevant)))
		return;
	reload(f, msg ? "event" : from);
}

/* "clients": {"192.168.2.10": {...}, ...} for every client seen since start. */
static void write_clients(struct forwarder *f, FILE *out)
{
	struct fwd_shared *sh = &f->sh;
	static const struct net_ip none;
	char ip[NET_IP_STR_MAX];
	int first = 1;

	fputs(",\"clients\":{", out);
	pthread_mutex_lock(&sh->clients_lock);
	for (size_t i = 0; sh->clients && i < CLIENT_STATS_MAX; i++) {
		const struct client_stat *cs = &sh->clients[i];

		if (memcmp(&cs->client, &none, sizeof(none)) == 0)
			continue;
		net_ip_str(&cs->client, ip);
		fprintf(out, "%s\"%s\":{\"active\":%lu,\"connections\":%lu,\"failures\":%lu,\"bytes_up\":%lu,\"bytes_down\":%lu}",
			first ? "" : ",", ip, cs->active, cs->connections, cs->failures, cs->bytes_up, cs->bytes_down);
		first = 0;
	}
	pthread_mutex_unlock(&sh->clients_lock);
	fputc('}', out);
}

static void write_stats(struct forwarder *f)
{
	struct fwd_stats *s = &f->sh.stats;
	char path[200], tmp[210], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int fd;

	if (!out)
		return;
	fprintf(out,
		"{\"pid\":%d,\"workers\":%u,\"port\":%u,\"mappings\":%zu,\"active\":%lu,\"accepted\":%lu,"
		"\"bytes_up\":%lu,\"bytes_down\":%lu,\"closes\":{",
		(int)getpid(), f->n_workers, f->sh.port, table_size(f->sh.table), atomic_load(&s->active),
		atomic_load(&s->accepted), atomic_load(&s->bytes_up), atomic_load(&s->bytes_down));
	for (int i = 0; i < CLOSE_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i ? "," : "", fwd_close_str(i), atomic_load(&s->closes[i]));
	fputs("},\"upstream_errors\":{", out);
	for (int i = UP_ERR_CONNECT_REFUSED; i < UP_RESULT_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i > UP_ERR_CONNECT_REFUSED ? "," : "", upstream_result_str(i),
			atomic_load(&s->upstream_errors[i]));
	fputc('}', out);
	write_clients(f, out);
	fputs("}\n", out);
	fclose(out);
	fwdstats_path(f->d->cfg.run_dir, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd >= 0) {
		if (write(fd, buf, len) == (ssize_t)len)
			rename(tmp, path); /* readers see a whole file, old or new */
		close(fd);
	}
	free(buf);
}

static void on_stats(struct evloop *ev, void *arg)
{
	(void)ev;
	write_stats(arg);
}

/* The watchdog's question: do the workers' loops still run (each ticks once a second)? */
static int workers_alive(struct daemon *d)
{
	struct forwarder *f = d->priv;

	return relay_alive(f->workers, 10000);
}

static const struct daemon_info info = {
	.name = "pgw-forwarder",
	.sock_name = "forwarder",
	.summary = "Relays each LAN client's TCP through its own upstream proxy (SOCKS5 or HTTP CONNECT).",
	.on_change = on_change,
	.watch_sql = DBWATCH_ENFORCEMENT_SQL, /* proxies, mappings, health status, settings, staleness */
	.watch_topics = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS,
	.alive = workers_alive,
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
	pthread_mutex_init(&f.sh.clients_lock, NULL);
	f.sh.clients = calloc(CLIENT_STATS_MAX, sizeof(*f.sh.clients));
	r = daemon_init(&d, &info, argc, argv);
	if (r == DAEMON_CONTINUE) {
		f.d = &d;
		d.priv = &f;
		f.sh.run_dir = d.cfg.run_dir;
		f.sh.port = d.cfg.forwarder_port;
		f.sh.tproxy_port = d.cfg.tproxy_port;
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		f.n_workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
		daemon_raise_nofile();
		if (reload(&f, "start") < 0 || relay_start(&f.sh, f.n_workers, &f.workers, err, sizeof(err)) < 0) {
			log_error("%s", f.sh.table ? err : "cannot load the mappings");
			r = DAEMON_EXIT_FAIL;
		} else {
			log_info("listening on port %u (REDIRECT) and %u (TPROXY) with %u workers", f.sh.port, f.sh.tproxy_port,
				 f.n_workers);
			f.stats_timer = ev_add_timer(d.ev, STATS_MS, STATS_MS, on_stats, &f);
			r = daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK;
			log_info("draining open connections (up to %u s)", f.sh.limits.drain_timeout_ms / 1000);
			relay_stop(f.workers);
			write_stats(&f);
		}
	}
	table_free(f.sh.table);
	free(f.sh.clients);
	daemon_fini(&d);
	pthread_rwlock_destroy(&f.sh.lock);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
