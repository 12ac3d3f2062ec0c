/* pgwctl status / notify / check - what the daemons applied, a manual nudge of the event path,
 * and an on-demand proxy check through pgw-healthd. */
#include "pgwctl.h"

#include "db.h"
#include "notify.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	unsigned topic;
} topics[] = {
	{ "proxies", TOPIC_PROXIES }, { "mappings", TOPIC_MAPPINGS }, { "health", TOPIC_HEALTH },
	{ "settings", TOPIC_SETTINGS }, { "users", TOPIC_USERS },     { "all", ~0u },
};

int cmd_notify(struct ctl *c, int argc, char **argv)
{
	unsigned mask = 0;

	for (int i = 1; i < argc; i++) {
		size_t k;
		for (k = 0; k < sizeof(topics) / sizeof(topics[0]); k++)
			if (strcmp(argv[i], topics[k].name) == 0)
				break;
		if (k == sizeof(topics) / sizeof(topics[0])) {
			fprintf(stderr, "pgwctl: unknown topic '%s' (proxies, mappings, health, settings, users, all)\n", argv[i]);
			return CTL_USAGE;
		}
		mask |= topics[k].topic;
	}
	if (!mask) {
		fprintf(stderr, "usage: pgwctl notify TOPIC...\n");
		return CTL_USAGE;
	}
	ctl_notify(c, mask);
	return CTL_OK;
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	sqlite3_stmt *st = NULL;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pgwctl status\n");
		return CTL_USAGE;
	}
	if (ctl_open(c) < 0)
		return CTL_FAIL;
	printf("proxies:  %lld (%lld up, %lld down, %lld unknown)\n", db_query_int(c->db, "SELECT count(*) FROM proxies", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'up'", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'down'", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'unknown'", -1));
	if (db_query_int(c->db, "SELECT count(*) FROM health_state WHERE stale", 0) > 0)
		printf("          %lld proxies' health is stale (no fresh result from pgw-healthd): their clients are blocked\n",
		       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE stale", 0));
	printf("mappings: %lld (%lld enabled)\n", db_query_int(c->db, "SELECT count(*) FROM mappings", -1),
	       db_query_int(c->db, "SELECT count(*) FROM mappings WHERE enabled = 1", -1));
	if (sqlite3_prepare_v2(c->db,
			       "SELECT generation, coalesce(datetime(applied_at, 'unixepoch'), 'never'), coalesce(duration_us, 0), "
			       "kind, active_count, blocked_count, last_error, errors_total, iface_error FROM agent_state WHERE id = 1",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		printf("agent:    generation %lld, last apply %s UTC (%s, %.3f ms), %lld active, %lld blocked clients\n",
		       (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       *(const char *)sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "-",
		       (double)sqlite3_column_int64(st, 2) / 1000.0, (long long)sqlite3_column_int64(st, 4),
		       (long long)sqlite3_column_int64(st, 5));
		if (*(const char *)sqlite3_column_text(st, 6))
			printf("          last error: %s (%lld errors in all)\n", (const char *)sqlite3_column_text(st, 6),
			       (long long)sqlite3_column_int64(st, 7));
		if (*(const char *)sqlite3_column_text(st, 8) &&
		    strcmp((const char *)sqlite3_column_text(st, 8), (const char *)sqlite3_column_text(st, 6)) != 0)
			printf("          interfaces: %s\n", (const char *)sqlite3_column_text(st, 8));
	}
	sqlite3_finalize(st);
	return CTL_OK;
}

/* Ask pgw-healthd to check a proxy now and wait for the answer (the API's health gate uses
 * the same request). Exit 0 when up, 1 when down, 2 when healthd does not answer. */
int cmd_check(struct ctl *c, int argc, char **argv)
{
	struct notify_msg req = { .type = NOTIFY_CHECK_REQUEST }, res;
	char name[NOTIFY_NAME_MAX], err[256], from[NOTIFY_NAME_MAX];
	struct notify *n;
	long long id;
	char *end;
	int waited = 0, r;

	if (argc != 2 || (id = strtoll(argv[1], &end, 10)) <= 0 || *end) {
		fprintf(stderr, "usage: pgwctl check PROXY_ID\n");
		return CTL_USAGE;
	}
	req.id = id;
	snprintf(name, sizeof(name), "ctl-%d", (int)getpid());
	n = notify_open(c->cfg.run_dir, name, err, sizeof(err));
	if (!n) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return CTL_FAIL;
	}
	if (notify_send(n, "healthd", &req) < 0) {
		fprintf(stderr, "pgwctl: pgw-healthd is not running (no socket in %s)\n", c->cfg.run_dir);
		notify_close(n);
		return CTL_USAGE;
	}
	for (;;) {
		struct pollfd pfd = { .fd = notify_fd(n), .events = POLLIN };
		if (waited >= 30000) {
			fprintf(stderr, "pgwctl: no answer from pgw-healthd within 30 s\n");
			notify_close(n);
			return CTL_USAGE;
		}
		if (poll(&pfd, 1, 500) == 0) {
			waited += 500;
			continue;
		}
		r = notify_recv(n, &res, from, sizeof(from));
		if (r == 0 && res.type == NOTIFY_CHECK_RESULT && res.id == id)
			break;
	}
	notify_close(n);
	if (res.status)
		printf("proxy %lld: up, %d ms, exit ip %s\n", id, res.value, res.text);
	else
		printf("proxy %lld: down: %s\n", id, res.text);
	return res.status ? CTL_OK : CTL_FAIL;
}
