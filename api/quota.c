/* quota.c - see quota.h. */
#include "quota.h"

#include "../common/quota.h"
#include "events.h"
#include "log.h"
#include "settings.h"

#include <string.h>

static json_int_t at(json_t *a, size_t i)
{
	return json_integer_value(json_array_get(a, i));
}

int quota_apply(sqlite3 *db, const struct pgw_config *cfg, json_t *delta, int64_t now, json_t *events)
{
	static const char *const sel =
	    "SELECT m.id, m.client_ip, m.quota_bytes, m.quota_period, m.quota_exceeded, q.period_start, "
	    "coalesce(q.used, 0), coalesce(q.granted, 0), coalesce(q.warned, 0), m.org_id FROM main.mappings m "
	    "LEFT JOIN main.client_quota q ON q.client_ip = m.client_ip WHERE m.quota_bytes > 0";
	char tz[SETTINGS_VALUE_MAX];
	sqlite3_stmt *st = NULL, *up = NULL, *flag = NULL;
	int changed = 0, rc;

	settings_value(db, cfg, "quota_timezone", tz, sizeof(tz));
	if (sqlite3_prepare_v2(db, sel, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(
		db,
		"INSERT OR REPLACE INTO main.client_quota (client_ip, period_start, used, granted, warned) "
		"VALUES (?1, ?2, ?3, ?4, ?5)",
		-1, &up, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE main.mappings SET quota_exceeded = ?2 WHERE id = ?1", -1, &flag, NULL) !=
		SQLITE_OK) {
		sqlite3_finalize(st);
		sqlite3_finalize(up);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 1),
			   *period = (const char *)sqlite3_column_text(st, 3);
		int64_t quota = sqlite3_column_int64(st, 2), ps = quota_period_start(now / 1000, period, tz);
		int exceeded = sqlite3_column_int(st, 4), had = sqlite3_column_type(st, 5) != SQLITE_NULL;
		int64_t start = sqlite3_column_int64(st, 5), used = sqlite3_column_int64(st, 6),
			granted = sqlite3_column_int64(st, 7), limit;
		int warned = sqlite3_column_int(st, 8), now_exceeded, rolled = 0;
		json_t *d = delta ? json_object_get(delta, ip) : NULL;
		int64_t add = d ? at(d, 0) + at(d, 1) : 0;

		if (!had || start != ps) { /* a new period: nothing used, nothing granted */
			rolled = had;
			start = ps;
			used = granted = 0;
			warned = 0;
		}
		used += add;
		limit = quota + granted;
		now_exceeded = used >= limit;
		if (!warned && used * 5 >= limit * 4) { /* sent also when the same bytes went on past the limit */
			warned = 1;
			log_info("quota: %s has used %lld of %lld bytes (80 %%)", ip, (long long)used,
				 (long long)limit);
			json_array_append_new(events,
					      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "client_ip", ip, "state",
							"warning", "used", (json_int_t)used, "limit", (json_int_t)limit,
							"percent", (json_int_t)(used * 100 / limit), "org_id",
							(json_int_t)sqlite3_column_int64(st, 9)));
		}
		if (rolled && now_exceeded == exceeded)
			changed++; /* the forwarder's count starts over too: it reloads */
		if (!had || rolled || add || warned != sqlite3_column_int(st, 8)) {
			sqlite3_reset(up);
			sqlite3_bind_text(up, 1, ip, -1, SQLITE_STATIC);
			sqlite3_bind_int64(up, 2, start);
			sqlite3_bind_int64(up, 3, used);
			sqlite3_bind_int64(up, 4, granted);
			sqlite3_bind_int(up, 5, warned);
			if (sqlite3_step(up) != SQLITE_DONE)
				break;
		}
		if (now_exceeded != exceeded) {
			sqlite3_reset(flag);
			sqlite3_bind_int64(flag, 1, sqlite3_column_int64(st, 0));
			sqlite3_bind_int(flag, 2, now_exceeded);
			if (sqlite3_step(flag) != SQLITE_DONE)
				break;
			changed++;
			if (now_exceeded)
				log_warnx("quota: %s used %lld of %lld bytes this %s: blocked until the period ends or "
					  "an admin "
					  "grants more",
					  ip, (long long)used, (long long)limit, period);
			else
				log_info("quota: %s is under its quota again (%s): unblocked", ip,
					 rolled ? "a new period" : "more granted or a larger quota");
			json_array_append_new(
			    events, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "client_ip", ip, "state",
					      now_exceeded ? "exceeded"
					      : rolled	   ? "new_period"
							   : "under",
					      "used", (json_int_t)used, "limit", (json_int_t)limit, "period_start",
					      (json_int_t)start, "org_id", (json_int_t)sqlite3_column_int64(st, 9)));
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_finalize(flag);
	return rc == SQLITE_DONE ? changed : -1;
}

void quota_publish(json_t *events)
{
	json_t *v;
	size_t i;

	json_array_foreach(events, i, v)
	{
		int64_t org = json_integer_value(json_object_get(v, "org_id"));
		json_object_del(v, "org_id");
		events_publish_to(org ? org : 1, "quota", json_incref(v));
	}
	json_decref(events);
}

json_t *quota_json(sqlite3 *db, const struct pgw_config *cfg, const char *ip, int64_t now)
{
	char tz[SETTINGS_VALUE_MAX];
	sqlite3_stmt *st = NULL;
	json_t *j = NULL;

	settings_value(db, cfg, "quota_timezone", tz, sizeof(tz));
	if (sqlite3_prepare_v2(
		db,
		"SELECT m.quota_bytes, m.quota_period, m.quota_exceeded, q.period_start, coalesce(q.used, 0), "
		"coalesce(q.granted, 0) FROM main.mappings m LEFT JOIN main.client_quota q ON q.client_ip = "
		"m.client_ip WHERE m.client_ip = ?1 AND m.quota_bytes > 0",
		-1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *period = (const char *)sqlite3_column_text(st, 1);
		int64_t ps = quota_period_start(now, period, tz), bytes = sqlite3_column_int64(st, 0);
		/* a row of an earlier period: nothing used in this one yet */
		int cur = sqlite3_column_type(st, 3) != SQLITE_NULL && sqlite3_column_int64(st, 3) == ps;
		int64_t used = cur ? sqlite3_column_int64(st, 4) : 0, granted = cur ? sqlite3_column_int64(st, 5) : 0;

		j = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:b}", "bytes", (json_int_t)bytes, "period", period,
			      "period_start", (json_int_t)ps, "used", (json_int_t)used, "granted", (json_int_t)granted,
			      "limit", (json_int_t)(bytes + granted), "exceeded", sqlite3_column_int(st, 2));
	}
	sqlite3_finalize(st);
	return j;
}
