/* hastate.c - see hastate.h. */
#include "hastate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int ha_setting_is_local(const char *key)
{
	static const char *const local[] = {"lan_iface",      "wan_iface",    "dhcp_leases_file",
					    "health_ca_file", "oidc_ca_file", "oidc_client_secret_file"};

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (strcmp(key, local[i]) == 0)
			return 1;
	return 0;
}

int64_t ha_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void text(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(out, size, "%s", t ? (const char *)t : "");
}

int ha_state_read(sqlite3 *db, struct ha_state *s)
{
	sqlite3_stmt *st;
	int r = -1;

	memset(s, 0, sizeof(*s));
	if (sqlite3_prepare_v2(db,
			       "SELECT role, role_at_ms, transitions, origin, generation, master_generation, "
			       "synced_at_ms, in_sync_at_ms, sync_error FROM main.ha_state WHERE id = 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		text(st, 0, s->role, sizeof(s->role));
		s->role_at_ms = sqlite3_column_int64(st, 1);
		s->transitions = sqlite3_column_int64(st, 2);
		text(st, 3, s->origin, sizeof(s->origin));
		s->generation = sqlite3_column_int64(st, 4);
		s->master_generation = sqlite3_column_int64(st, 5);
		s->synced_at_ms = sqlite3_column_int64(st, 6);
		s->in_sync_at_ms = sqlite3_column_int64(st, 7);
		text(st, 8, s->sync_error, sizeof(s->sync_error));
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int ha_is_master(const struct ha_state *s)
{
	return strcmp(s->role, "master") == 0;
}

double ha_lag_seconds(const struct ha_state *s, int64_t now_ms)
{
	if (ha_is_master(s))
		return 0;
	if (!s->in_sync_at_ms)
		return -1;
	if (s->in_sync_at_ms == s->synced_at_ms && now_ms - s->synced_at_ms <= HA_HOLD_MS + HA_LATE_MS)
		return 0;
	return now_ms > s->in_sync_at_ms ? (double)(now_ms - s->in_sync_at_ms) / 1000.0 : 0;
}

const char *ha_role_parse(const char *word)
{
	static const char *const roles[][2] = {
	    {"MASTER", "master"}, {"BACKUP", "backup"}, {"FAULT", "fault"}, {"STOP", "backup"}, {"DELETED", "backup"}};

	for (size_t i = 0; word && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcasecmp(word, roles[i][0]) == 0)
			return roles[i][1];
	return NULL;
}

int ha_set_role(sqlite3 *db, const char *role, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(
	    db,
	    "UPDATE main.ha_state SET transitions = transitions + (role IS NOT ?1), role_at_ms = ?2, "
	    "origin = CASE WHEN ?1 = 'master' AND role IS NOT 'master' THEN lower(hex(randomblob(8))) ELSE origin END, "
	    "generation = generation + (?1 = 'master' AND role IS NOT 'master'), role = ?1 WHERE id = 1",
	    -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ha_now_ms());
		rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1 ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot record the role: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}
