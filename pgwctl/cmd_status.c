/* pgwctl status - proxies, mappings, and what the agent applied (and what is wrong with it). */
#include "pgwctl.h"

#include "db.h"
#include "fwdctl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The forwarder, from its stats (asked on its control socket): whether it blocks every client for
 * want of mappings it can read, and its UDP relay. Asked whether the DB opens or not: a DB pgwctl
 * cannot read either is when the first matters most. */
static void forwarder_status(struct ctl *c)
{
	char err[256], *buf = NULL;
	size_t len = 0;
	json_t *j, *u;
	int r = fwdctl_call(c->cfg.run_dir, "stats\n", &buf, &len, 3000, err, sizeof(err));

	if (r < 0) { /* absent (no socket, refused) or there but not answering */
		printf("udp:      pgw-forwarder %s (%s): client UDP other than DNS is blocked\n",
		       r == -ENOENT || r == -ECONNREFUSED ? "is not running" : "does not answer", err);
		return;
	}
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (json_is_true(json_object_get(j, "mappings_unread"))) {
		struct timespec now;
		const json_int_t since = json_integer_value(json_object_get(j, "mappings_unread_since_ms"));
		char for_s[40] = "";

		clock_gettime(CLOCK_REALTIME, &now);
		if (since > 0)
			snprintf(for_s, sizeof(for_s), " for %lld s",
				 ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (long long)since) / 1000);
		printf("forwarder: BLOCKING EVERY CLIENT: no mappings read%s (the database unreadable?); its log says "
		       "why\n",
		       for_s);
	}
	if (json_is_object(u = json_object_get(j, "udp"))) {
		if (!json_is_true(json_object_get(u, "enabled")))
			printf("udp:      relay off (udp_relay false): client UDP other than DNS is blocked\n");
		else if (!json_is_true(json_object_get(u, "listening")))
			printf("udp:      relay NOT LISTENING: %s; client UDP other than DNS is blocked\n",
			       json_string_value(json_object_get(u, "error"))
				   ? json_string_value(json_object_get(u, "error"))
				   : "");
		else
			printf("udp:      relay listening, %lld associations, %lld flows\n",
			       (long long)json_integer_value(json_object_get(u, "sessions")),
			       (long long)json_integer_value(json_object_get(u, "flows")));
	}
	json_decref(j);
}

/* pgwctl stats: the forwarder's counters now, as JSON (what pgw-api reads each second). */
int cmd_stats(struct ctl *c, int argc, char **argv)
{
	char err[256], *buf = NULL;
	size_t len = 0;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pgwctl stats\n");
		return 2;
	}
	if (fwdctl_call(c->cfg.run_dir, "stats\n", &buf, &len, 5000, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return 1;
	}
	fwrite(buf, 1, len, stdout);
	free(buf);
	return 0;
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	sqlite3_stmt *st = NULL;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pgwctl status\n");
		return CTL_USAGE;
	}
	if (ctl_open(c) < 0) {
		forwarder_status(c);
		return CTL_FAIL;
	}
	printf("proxies:  %lld (%lld up, %lld down, %lld unknown)\n",
	       db_query_int(c->db, "SELECT count(*) FROM proxies", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'up'", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'down'", -1),
	       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE effective_status = 'unknown'", -1));
	if (db_query_int(c->db, "SELECT count(*) FROM health_state WHERE stale", 0) > 0)
		printf("          %lld proxies' health is stale (no fresh result from pgw-healthd): their clients are "
		       "blocked\n",
		       db_query_int(c->db, "SELECT count(*) FROM health_state WHERE stale", 0));
	printf("mappings: %lld (%lld enabled)\n", db_query_int(c->db, "SELECT count(*) FROM mappings", -1),
	       db_query_int(c->db, "SELECT count(*) FROM mappings WHERE enabled = 1", -1));
	if (sqlite3_prepare_v2(
		c->db,
		"SELECT generation, coalesce(datetime(applied_at, 'unixepoch'), 'never'), coalesce(duration_us, 0), "
		"kind, active_count, blocked_count, last_error, errors_total, iface_error FROM agent_state WHERE id = "
		"1",
		-1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		printf(
		    "agent:    generation %lld, last apply %s UTC (%s, %.3f ms), %lld active, %lld blocked clients\n",
		    (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		    *(const char *)sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "-",
		    (double)sqlite3_column_int64(st, 2) / 1000.0, (long long)sqlite3_column_int64(st, 4),
		    (long long)sqlite3_column_int64(st, 5));
		if (*(const char *)sqlite3_column_text(st, 6))
			printf("          last error: %s (%lld errors in all)\n",
			       (const char *)sqlite3_column_text(st, 6), (long long)sqlite3_column_int64(st, 7));
		if (*(const char *)sqlite3_column_text(st, 8) &&
		    strcmp((const char *)sqlite3_column_text(st, 8), (const char *)sqlite3_column_text(st, 6)) != 0)
			printf("          interfaces: %s\n", (const char *)sqlite3_column_text(st, 8));
	}
	sqlite3_finalize(st);
	forwarder_status(c);
	return CTL_OK;
}
