/* daemon.h - what every pgw daemon does the same way: arguments (--help, --check-config),
 * configuration from the environment, logging, the DB with its schema check, the notify
 * socket with the polling fallback, signals, readiness to systemd, and orderly shutdown. */
#ifndef PGW_DAEMON_H
#define PGW_DAEMON_H

#include "config.h"
#include "dbwatch.h"
#include "evloop.h"
#include "notify.h"

#include <sqlite3.h>

#define DAEMON_POLL_MS 1000

struct daemon;

struct daemon_info {
	const char *name;      /* "pgw-agent" */
	const char *sock_name; /* notify socket name: "agent" */
	const char *summary;   /* one line for --help */
	/* Called after a datagram (msg != NULL) or when the polling fallback saw a commit (msg == NULL). */
	void (*on_change)(struct daemon *d, const struct notify_msg *msg, const char *from);
	int (*validate)(const struct pgw_config *cfg, char *err, size_t errlen); /* extra checks, may be NULL */
	/* Polling fallback: NULL reacts to any commit; else a fingerprint query (see dbwatch.h). */
	const char *watch_sql;
	/* The NOTIFY_CHANGED topics this daemon acts on (0: all). Only those re-sync the polling
	 * fallback: a datagram about anything else must not swallow a change the poll would see
	 * (a health result going stale sends no datagram at all). */
	uint32_t watch_topics;
	/* Asked before each systemd WATCHDOG=1 (may be NULL): 0 withholds it, so a daemon whose
	 * own threads are stuck (not just its main loop) is restarted too. */
	int (*alive)(struct daemon *d);
	/* Keeps CAP_NET_ADMIN, when root had it, as it becomes PGW_SERVICE_USER (PGW_DROP_ROOT). */
	int net_admin;
};

struct daemon {
	const struct daemon_info *info;
	struct pgw_config cfg;
	sqlite3 *db;
	struct evloop *ev;
	struct notify *nt;
	struct dbwatch *watch;
	struct ev_handle *sig, *nt_h;
	unsigned long events, polls; /* changes seen through each path */
	void *priv;		     /* the daemon's own context */
};

enum { DAEMON_CONTINUE = 0, DAEMON_EXIT_OK = 1, DAEMON_EXIT_FAIL = 2 };

/* Parse argv, load and validate config, open everything. Returns DAEMON_CONTINUE when the
 * daemon should run, DAEMON_EXIT_OK after --help/--check-config, DAEMON_EXIT_FAIL after an
 * error (already printed/logged). */
int daemon_init(struct daemon *d, const struct daemon_info *info, int argc, char **argv);
/* Tell systemd we are ready (no-op without NOTIFY_SOCKET), then run the loop. */
int daemon_run(struct daemon *d);
void daemon_fini(struct daemon *d);
/* Raise RLIMIT_NOFILE to its hard limit (daemons with many sockets); logs the result. */
void daemon_raise_nofile(void);
/* The systemd watchdog: given $WATCHDOG_USEC and $WATCHDOG_PID, how often (ms) to send
 * "WATCHDOG=1" (half the period), or 0 when no watchdog is asked of this process. daemon_run()
 * sends it from the event loop, so a wedged loop gets the daemon restarted. */
long daemon_watchdog_ms(const char *usec, const char *pid, long self);
/* Send "READY=1" etc. to $NOTIFY_SOCKET; 0 when sent or not under systemd. */
int daemon_sd_notify(const char *state);

#endif
