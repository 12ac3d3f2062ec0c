/* daemon.c - see daemon.h. */
#include "daemon.h"

#include "db.h"
#include "migrate.h"
#include "log.h"

#include <cap-ng.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void usage(const struct daemon_info *info, FILE *out)
{
	fprintf(out,
		"Usage: %s [--check-config] [--help]\n"
		"%s\n\n"
		"  -n, --check-config  validate the configuration and the database, then exit\n"
		"  -h, --help          show this help\n\n"
		"Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads from the database.\n\n",
		info->name, info->summary);
	config_usage(out);
}

static void on_signal(struct evloop *ev, int signo, void *arg)
{
	struct daemon *d = arg;

	if (signo == SIGHUP) {
		log_info("SIGHUP: reloading");
		if (d->info->on_change)
			d->info->on_change(d, NULL, "sighup");
		return;
	}
	log_info("%s: stopping", strsignal(signo));
	ev_stop(ev);
}

static void on_notify(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct daemon *d = arg;
	struct notify_msg m;
	char from[NOTIFY_NAME_MAX];
	int r;

	(void)ev, (void)fd, (void)events;
	while ((r = notify_recv(d->nt, &m, from, sizeof(from))) != -EAGAIN) {
		if (r == -EBADMSG || r == -ENOTSUP) {
			log_debug("notify: ignored %s datagram from '%s'", r == -EBADMSG ? "malformed" : "unknown",
				  from);
			continue;
		}
		if (r < 0) {
			log_emit(LOG_LVL_WARN, NULL, -r, "notify: recv");
			return;
		}
		d->events++;
		log_debug("notify: %s topics=0x%x id=%lld from '%s'", notify_type_str(m.type), m.topics,
			  (long long)m.id, from);
		if (m.type == NOTIFY_CHANGED && (!d->info->watch_topics || (m.topics & d->info->watch_topics)))
			dbwatch_sync(d->watch); /* the daemon reads the state after this: nothing is lost */
		if (d->info->on_change)
			d->info->on_change(d, &m, from);
	}
}

static void on_poll(void *arg)
{
	struct daemon *d = arg;

	d->polls++;
	log_debug("db changed (polling fallback)");
	if (d->info->on_change)
		d->info->on_change(d, NULL, "poll");
}

int daemon_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	int fd, r = 0;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* PGW_DROP_ROOT: a container gives capabilities only to root (Docker grants none to another
 * user), so the daemon starts as root and becomes the service user at once, before it opens
 * anything: its files and sockets are the service user's, strict OUTPUT mode lets it out, and it
 * keeps CAP_NET_ADMIN only where it needs it and was given it. Not root: nothing to drop. */
static int drop_root(const struct daemon_info *info, const struct pgw_config *cfg)
{
	struct passwd *pw;
	int keep, r;

	if (!cfg->drop_root || getuid() != 0)
		return 0;
	pw = getpwnam(cfg->service_user);
	if (!pw || pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("PGW_DROP_ROOT: %s user '%s' (PGW_SERVICE_USER)", pw ? "the root" : "no", cfg->service_user);
		return -1;
	}
	if (capng_get_caps_process() < 0) {
		log_error("PGW_DROP_ROOT: cannot read this process's capabilities");
		return -1;
	}
	keep = info->net_admin && capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN) == 1;
	capng_clear(CAPNG_SELECT_CAPS);
	if (keep)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN);
	r = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_AMBIENT);
	/* and nothing regained by an exec (file capabilities, set-user-id), whatever the container says */
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
	if (r < 0 || getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getegid() != pw->pw_gid ||
	    getgroups(0, NULL) != 0 || setuid(0) == 0) {
		log_error("PGW_DROP_ROOT: could not become '%s' (%d; CAP_SETUID and CAP_SETGID are needed)",
			  cfg->service_user, r);
		return -1;
	}
	log_info("running as %s (uid %u), %s", cfg->service_user, (unsigned)pw->pw_uid,
		 keep ? "keeping CAP_NET_ADMIN alone" : "without capabilities");
	return 0;
}

int daemon_init(struct daemon *d, const struct daemon_info *info, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'}, {"check-config", no_argument, NULL, 'n'}, {NULL, 0, NULL, 0}};
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	int check_only = 0, c;
	char err[512];

	memset(d, 0, sizeof(*d));
	d->info = info;
	while ((c = getopt_long(argc, argv, "hn", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(info, stdout);
			return DAEMON_EXIT_OK;
		case 'n':
			check_only = 1;
			break;
		default:
			usage(info, stderr);
			return DAEMON_EXIT_FAIL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", info->name, argv[optind]);
		return DAEMON_EXIT_FAIL;
	}
	if (config_load(&d->cfg, NULL, NULL, err, sizeof(err)) < 0 ||
	    (info->validate && info->validate(&d->cfg, err, sizeof(err)) < 0)) {
		fprintf(stderr, "%s: configuration error: %s\n", info->name, err);
		return DAEMON_EXIT_FAIL;
	}
	log_init(info->name, d->cfg.log_format, d->cfg.log_level);
	if (strcmp(info->name, "pgw-api") != 0) { /* the JWT and HA secrets are pgw-api's alone */
		explicit_bzero(d->cfg.jwt_secret, sizeof(d->cfg.jwt_secret));
		d->cfg.jwt_secret_len = 0;
		explicit_bzero(d->cfg.ha_secret, sizeof(d->cfg.ha_secret));
		d->cfg.ha_secret_len = 0;
	}
	if (drop_root(info, &d->cfg) < 0)
		return DAEMON_EXIT_FAIL;
	if (db_open(d->cfg.db_path, 0, &d->db, err, sizeof(err)) < 0 ||
	    migrate_check_schema(d->db, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return DAEMON_EXIT_FAIL;
	}
	if (check_only) {
		printf("%s: configuration and database OK\n", info->name);
		return DAEMON_EXIT_OK;
	}
	d->ev = ev_new();
	if (!d->ev) {
		log_error("event loop: %s", strerror(errno));
		return DAEMON_EXIT_FAIL;
	}
	d->sig = ev_add_signals(d->ev, sigs, 3, on_signal, d);
	d->nt = notify_open(d->cfg.run_dir, info->sock_name, err, sizeof(err));
	if (!d->sig || !d->nt) {
		log_error("%s", d->nt ? "signalfd failed" : err);
		return DAEMON_EXIT_FAIL;
	}
	d->nt_h = ev_add_fd(d->ev, notify_fd(d->nt), EPOLLIN, on_notify, d);
	d->watch = dbwatch_new(d->ev, d->db, DAEMON_POLL_MS, info->watch_sql, on_poll, d);
	if (!d->nt_h || !d->watch) {
		log_error("cannot watch the notify socket or the database");
		return DAEMON_EXIT_FAIL;
	}
	config_log(&d->cfg);
	return DAEMON_CONTINUE;
}

long daemon_watchdog_ms(const char *usec, const char *pid, long self)
{
	char *end;
	unsigned long long us;
	long p;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) { /* set: the watchdog is meant for that process only */
		p = strtol(pid, &end, 10);
		if (*end || p != self)
			return 0;
	}
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || *end || us < 2000 || usec[0] == '-')
		return 0;
	return (long)(us / 2000); /* half the period, in ms: systemd's advice */
}

static void on_watchdog(struct evloop *ev, void *arg)
{
	struct daemon *d = arg;

	(void)ev;
	if (d->info->alive && !d->info->alive(d)) {
		log_error("watchdog: a worker is stuck; not telling systemd we are alive");
		return;
	}
	daemon_sd_notify("WATCHDOG=1"); /* from the loop itself: a wedged loop stops sending */
}

int daemon_run(struct daemon *d)
{
	struct ev_handle *wd = NULL;
	long wd_ms = daemon_watchdog_ms(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), (long)getpid());
	int r;

	log_info("started (pid %d)", (int)getpid());
	if (wd_ms > 0) {
		wd = ev_add_timer(d->ev, (uint64_t)wd_ms, (uint64_t)wd_ms, on_watchdog, d);
		if (wd)
			log_info("systemd watchdog: WATCHDOG=1 every %ld ms", wd_ms);
		else
			log_warnx("systemd watchdog: cannot arm the timer");
	}
	daemon_sd_notify("READY=1");
	r = ev_run(d->ev);
	ev_del(d->ev, wd);
	daemon_sd_notify("STOPPING=1");
	if (r < 0)
		log_emit(LOG_LVL_ERROR, NULL, -r, "event loop failed");
	else
		log_info("stopped");
	return r;
}

void daemon_fini(struct daemon *d)
{
	dbwatch_free(d->watch);
	if (d->ev) {
		ev_del(d->ev, d->nt_h);
		ev_del(d->ev, d->sig);
	}
	notify_close(d->nt);
	ev_free(d->ev);
	db_close(d->db);
	config_wipe(&d->cfg);
}

void daemon_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise RLIMIT_NOFILE");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("open files limit: %llu", (unsigned long long)rl.rlim_cur);
}
