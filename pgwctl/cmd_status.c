/* pgwctl status / notify - what the daemons applied, and a manual nudge of the event path. */
#include "pgwctl.h"

#include "notify.h"

#include <stdio.h>
#include <string.h>

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

static long long one(struct ctl *c, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
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
	printf("proxies:  %lld (%lld up, %lld down, %lld unknown)\n", one(c, "SELECT count(*) FROM proxies"),
	       one(c, "SELECT count(*) FROM proxy_health WHERE status = 'up'"),
	       one(c, "SELECT count(*) FROM proxy_health WHERE status = 'down'"),
	       one(c, "SELECT count(*) FROM proxy_health WHERE status = 'unknown'"));
	printf("mappings: %lld (%lld enabled)\n", one(c, "SELECT count(*) FROM mappings"),
	       one(c, "SELECT count(*) FROM mappings WHERE enabled = 1"));
	if (sqlite3_prepare_v2(c->db,
			       "SELECT generation, coalesce(datetime(applied_at, 'unixepoch'), 'never'), coalesce(duration_us, 0), "
			       "kind, active_count, blocked_count, last_error, errors_total FROM agent_state WHERE id = 1",
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
	}
	sqlite3_finalize(st);
	return CTL_OK;
}
