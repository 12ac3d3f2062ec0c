/* pgwctl ha - the HA pair (issue 22): keepalived's notify hook and check script, and the
 * pair's state for operators and scripts. */
#include "pgwctl.h"

#include "db.h"
#include "fwdctl.h"
#include "hastate.h"
#include "notify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* notify MASTER|BACKUP|FAULT, or keepalived's own notify arguments: INSTANCE|GROUP NAME STATE PRIORITY */
static int ha_notify(struct ctl *c, int argc, char **argv)
{
	const char *word = argc == 2 ? argv[1] : argc >= 4 ? argv[3] : NULL, *role;
	char err[300];

	if (argc >= 4 && strcmp(argv[1], "INSTANCE") != 0 && strcmp(argv[1], "GROUP") != 0)
		word = NULL;
	if (!(role = ha_role_parse(word))) {
		fprintf(stderr, "usage: pgwctl ha notify MASTER|BACKUP|FAULT\n");
		return CTL_USAGE;
	}
	if (ctl_open(c) < 0)
		return CTL_FAIL;
	if (ha_set_role(c->db, role, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return CTL_FAIL;
	}
	ctl_notify(c, TOPIC_SETTINGS); /* pgw-api's dashboard and metrics show it at once */
	printf("role: %s\n", role);
	return CTL_OK;
}

static int ha_status(struct ctl *c, int argc, char **argv)
{
	struct ha_state s;
	int json = argc == 2 && strcmp(argv[1], "--json") == 0;
	double lag;

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: pgwctl ha status [--json]\n");
		return CTL_USAGE;
	}
	if (ctl_open(c) < 0)
		return CTL_FAIL;
	if (ha_state_read(c->db, &s) < 0) {
		fprintf(stderr, "pgwctl: cannot read the HA state: %s\n", sqlite3_errmsg(c->db));
		return CTL_FAIL;
	}
	lag = ha_lag_seconds(&s, ha_now_ms());
	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:I,s:o,s:I,s:s,s:I}", "role", s.role[0] ? s.role : "unknown", "peer",
				      c->cfg.ha_peer, "generation", (json_int_t)s.generation, "lag",
				      lag < 0 ? json_null() : json_real(lag), "master_generation",
				      (json_int_t)s.master_generation, "sync_error", s.sync_error, "transitions",
				      (json_int_t)s.transitions);
		char *t = json_dumps(j, JSON_COMPACT);
		printf("%s\n", t ? t : "{}");
		free(t);
		json_decref(j);
		return CTL_OK;
	}
	printf("role: %s\n", s.role[0] ? s.role : "unknown");
	printf("peer: %s\n", c->cfg.ha_peer[0] ? c->cfg.ha_peer : "none");
	printf("generation: %lld\n", (long long)s.generation);
	if (lag < 0)
		printf("lag: never synced\n");
	else
		printf("lag: %.1f\n", lag);
	printf("master_generation: %lld\n", (long long)s.master_generation);
	printf("transitions: %lld\n", (long long)s.transitions);
	if (s.sync_error[0])
		printf("sync_error: %s\n", s.sync_error);
	return CTL_OK;
}

/* The forwarder's answer to "ping" (fwdctl.h): 0 when its loops run, else -1 (said). One
 * that knows no "ping" (an upgrade installed, the forwarder not yet restarted) answered: alive
 * as far as it can say, as the check was before "ping". */
static int forwarder_alive(const char *reply, size_t len)
{
	json_t *j = json_loadb(reply, len, 0, NULL), *alive = json_object_get(j, "alive");
	const char *e = json_string_value(json_object_get(j, "error"));
	int r = 0;

	if (json_is_false(alive)) {
		fprintf(stderr, "pgwctl: pgw-forwarder answers, but %s\n", e ? e : "says it does not run");
		r = -1;
	} else if (!json_is_true(alive) && !(e && strncmp(e, "unknown request", 15) == 0)) {
		fprintf(stderr, "pgwctl: pgw-forwarder's answer to ping is not understood: %.100s\n", reply);
		r = -1;
	}
	json_decref(j);
	return r;
}

/* keepalived's vrrp_script: 0 only when this node can enforce, so the address moves away from a
 * sick node. The reason for a failure goes to stderr. */
static int ha_check(struct ctl *c)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_AGENT}; /* ignored by the agent */
	struct notify *n;
	char err[300], *reply = NULL;
	size_t len = 0;
	sqlite3_stmt *st;
	int ok = 0, r;

	if (ctl_open(c) < 0)
		return CTL_FAIL; /* ctl_open said why */
	if (sqlite3_prepare_v2(c->db,
			       "SELECT applied_at IS NOT NULL AND (error_at IS NULL OR error_at <= applied_at), "
			       "last_error FROM main.agent_state WHERE id = 1",
			       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pgwctl: the database is unreadable: %s\n", sqlite3_errmsg(c->db));
		return CTL_FAIL;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		ok = sqlite3_column_int(st, 0);
		if (!ok)
			fprintf(stderr, "pgwctl: pgw-agent has not applied the ruleset%s%s\n",
				sqlite3_column_text(st, 1) && *sqlite3_column_text(st, 1) ? ": " : "",
				(const char *)sqlite3_column_text(st, 1));
	} else {
		fprintf(stderr, "pgwctl: pgw-agent has never applied the ruleset\n");
	}
	sqlite3_finalize(st);
	if (!ok)
		return CTL_FAIL;
	n = notify_open(c->cfg.run_dir, NULL, err, sizeof(err));
	r = n ? notify_send(n, "agent", &m) : -EIO;
	if (n)
		notify_close(n);
	if (r < 0) { /* -EAGAIN: its queue is full, it does not read: wedged */
		fprintf(stderr, "pgwctl: pgw-agent is not running or does not read its socket (%s)\n", strerror(-r));
		return CTL_FAIL;
	}
	{ /* a node that has never had a configuration (no user, never synced) must not take the
	   * clients' address: it would serve an empty one and, as master, hand it to the other */
		struct ha_state s;
		if (c->cfg.ha_peer[0] && ha_state_read(c->db, &s) == 0 && !ha_is_master(&s) && !s.in_sync_at_ms &&
		    db_query_int(c->db, "SELECT count(*) FROM main.users", 0) == 0) {
			fprintf(stderr,
				"pgwctl: this node has no configuration yet and has never synced from its peer %s\n",
				c->cfg.ha_peer);
			return CTL_FAIL;
		}
	}
	if (fwdctl_call(c->cfg.run_dir, "ping\n", &reply, &len, 1000, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: pgw-forwarder does not answer: %s\n", err);
		return CTL_FAIL;
	}
	r = forwarder_alive(reply, len);
	free(reply);
	return r == 0 ? CTL_OK : CTL_FAIL;
}

int cmd_ha(struct ctl *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "notify") == 0)
		return ha_notify(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return ha_status(c, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "check") == 0)
		return ha_check(c);
	fprintf(stderr, "usage: pgwctl ha notify MASTER|BACKUP|FAULT | ha status [--json] | ha check\n");
	return CTL_USAGE;
}
