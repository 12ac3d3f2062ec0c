/* feed.c - see feed.h. Snapshots are small JSON objects keyed by id; a change is published
 * with the new value, so a dashboard can apply events without re-reading. */
#include "feed.h"

#include "usage.h"

#include "audit.h"
#include "events.h"
#include "ha.h"
#include "quota.h"
#include "resources.h"
#include "webhooks.h"
#include "notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct feed {
	sqlite3 *db;
	json_t *health;		      /* proxy id -> health */
	json_t *clients;	      /* client ip -> "active" | "blocked" */
	json_t *agent;		      /* agent_state */
	json_t *forwarder;	      /* forwarder stats (every organisation's) */
	json_t *daemons;	      /* which daemons run (api_daemons), as last published */
	json_t *ha;		      /* the HA pair's state as last published, its lag only as behind or not */
	const struct pgw_config *cfg; /* run_dir (the daemons' sockets), ha_peer */
	json_t *org_fwd;	      /* organisation id -> its share of them, as last published */
	json_t *org_seq;	      /* organisation id -> [proxies_seq, mappings_seq] */
	json_t *owner;		      /* proxy id or client address -> organisation, as last seen */
	char stale[256];	      /* which up results have gone stale: they change with time, not commits */
	long long seq[3];	      /* change_seq of proxies, mappings, settings as last published */
	struct usage *usage;	      /* the usage history it feeds with the forwarder's counters */
	struct notify *nt;	      /* the daemon's: announces the quota blocks it makes */
	json_t *client_bytes;	      /* client ip -> [bytes_up, bytes_down] as last read (the growth since) */
	long long read_ms;	      /* when the forwarder's stats were last read (wall clock, ms) */
	long long pruned_ms;	      /* when the audit log was last pruned (audit_retention_days) */
	int prune_more;		      /* it stopped with rows perhaps left: again at the next tick */
};

#define FEED_PROXIES_MAX 64 /* proxies in one "forwarder" event: the busiest that moved */

static const char *const seq_topics[3] = {"proxies", "mappings", "settings"};
static const uint32_t seq_bits[3] = {TOPIC_PROXIES, TOPIC_MAPPINGS, TOPIC_SETTINGS};

/* The polling fallback says only "something was committed" (an audit row, a login...): of the
 * topics that make dashboards refetch, keep those whose change_seq really moved. */
static uint32_t moved_topics(struct feed *f)
{
	uint32_t t = 0;

	for (int i = 0; i < 3; i++) {
		sqlite3_stmt *st = NULL;
		long long v = f->seq[i];
		if (sqlite3_prepare_v2(f->db, "SELECT seq FROM change_seq WHERE topic = ?1", -1, &st, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_text(st, 1, seq_topics[i], -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		if (v != f->seq[i])
			t |= seq_bits[i];
		f->seq[i] = v;
	}
	return t;
}

static json_t *col(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return json_null();
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	default:
		return json_string((const char *)sqlite3_column_text(st, i));
	}
}

/* Who owns what: proxy ids and client addresses -> organisation id (one namespace: an address
 * is never a decimal id). */
static json_t *owners_now(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *o = json_object();

	if (sqlite3_prepare_v2(
		db, "SELECT id, org_id FROM main.proxies UNION ALL SELECT client_ip, org_id FROM main.mappings", -1,
		&st, NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
				    json_integer(sqlite3_column_int64(st, 1)));
	sqlite3_finalize(st);
	return o;
}

static json_t *org_seq_now(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *o = json_object();

	if (sqlite3_prepare_v2(db, "SELECT id, proxies_seq, mappings_seq FROM main.orgs", -1, &st, NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
				    json_pack("[I, I]", (json_int_t)sqlite3_column_int64(st, 1),
					      (json_int_t)sqlite3_column_int64(st, 2)));
	sqlite3_finalize(st);
	return o;
}

/* The organisation key belongs to (now, or before it was removed); EVENTS_ALL_ORGS when
 * nobody can tell: then only superadmins see it. */
static int64_t owner_of(struct feed *f, json_t *old_owner, const char *key)
{
	json_t *v = json_object_get(f->owner, key);

	if (!v && old_owner)
		v = json_object_get(old_owner, key);
	return v ? (int64_t)json_integer_value(v) : EVENTS_ALL_ORGS;
}

/* Rows of sql as {key (column 0): {names[1..]: values}}. */
static json_t *snapshot(sqlite3 *db, const char *sql, const char *const *names, int ncols)
{
	sqlite3_stmt *st = NULL;
	json_t *o = json_object();

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = json_object();
		for (int i = 0; i < ncols; i++)
			json_object_set_new(row, names[i], col(st, i));
		json_object_set_new(o, (const char *)sqlite3_column_text(st, 0), row);
	}
	sqlite3_finalize(st);
	return o;
}

static const char *const client_cols[] = {"client_ip", "state", "mapping_id", "proxy_id", "carrying_proxy_id"};
static const char *const agent_cols[] = {
    "id",	    "generation",	 "applied_at",	      "duration_us",  "kind",
    "active_count", "blocked_count",	 "last_error",	      "errors_total", "lan_iface",
    "wan_iface",    "lan_iface_present", "wan_iface_present", "iface_error"};

/* An SQL 0/1 as JSON false/true, as GET answers have it. */
static void as_bool(json_t *row, const char *key)
{
	json_object_set_new(row, key, json_boolean(json_integer_value(json_object_get(row, key)) != 0));
}

/* Every proxy's health row, keyed by id: the same rows as GET /health (health_row()). */
static json_t *health_now(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *o = json_object();
	char key[24];

	if (sqlite3_prepare_v2(db, HEALTH_ROW_SQL, -1, &st, NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(key, sizeof(key), "%lld", (long long)sqlite3_column_int64(st, 0));
		json_object_set_new(o, key, health_row(st));
	}
	sqlite3_finalize(st);
	return o;
}

static json_t *clients_now(sqlite3 *db)
{
	return snapshot(
	    db,
	    "SELECT client_ip, CASE WHEN active THEN 'active' ELSE 'blocked' END, id, proxy_id, carrying_proxy_id FROM "
	    "mapping_state",
	    client_cols, 5);
}

static json_t *agent_now(sqlite3 *db)
{
	json_t *o = snapshot(db,
			     "SELECT id, generation, applied_at, duration_us, kind, active_count, blocked_count, "
			     "last_error, errors_total, lan_iface, wan_iface, lan_iface_present, wan_iface_present, "
			     "iface_error FROM agent_state",
			     agent_cols, 14);
	json_t *one = json_incref(json_object_get(o, "1"));

	json_decref(o);
	if (one) {
		as_bool(one, "lan_iface_present");
		as_bool(one, "wan_iface_present");
	}
	return one ? one : json_object();
}

static json_t *ha_key(json_t *now);

struct feed *feed_new(sqlite3 *db, const struct pgw_config *cfg, struct notify *nt)
{
	struct feed *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->db = db;
	f->nt = nt;
	f->cfg = cfg;
	f->health = health_now(db);
	f->clients = clients_now(db);
	f->agent = agent_now(db);
	f->forwarder = json_object();
	f->daemons = api_daemons(cfg->run_dir); /* events for changes from here on, not for the start */
	if (cfg->ha_peer[0]) {
		json_t *ha = ha_state_json(cfg, db);
		f->ha = ha ? ha_key(ha) : NULL;
		json_decref(ha);
	}
	f->org_fwd = json_object();
	f->org_seq = org_seq_now(db);
	f->owner = owners_now(db);
	f->usage = usage_new(db, cfg);
	moved_topics(f);
	return f;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	json_decref(f->health);
	json_decref(f->clients);
	json_decref(f->agent);
	json_decref(f->forwarder);
	json_decref(f->daemons);
	json_decref(f->ha);
	json_decref(f->org_fwd);
	json_decref(f->org_seq);
	json_decref(f->owner);
	json_decref(f->client_bytes);
	usage_free(f->usage);
	free(f);
}

/* Publish type for every key whose value differs (or is new / gone), to the organisation that
 * owns the key. Returns the new snapshot. */
static json_t *diff(struct feed *f, json_t *old_owner, json_t *old, json_t *now, const char *type, const char *gone_key)
{
	const char *k;
	json_t *v;

	json_object_foreach(now, k, v)
	{
		if (!json_equal(v, json_object_get(old, k)))
			events_publish_to(owner_of(f, old_owner, k), type, json_incref(v));
	}
	json_object_foreach(old, k, v)
	{
		if (!json_object_get(now, k))
			events_publish_to(owner_of(f, old_owner, k), type,
					  json_pack("{s:s, s:b}", gone_key, k, "removed", 1));
	}
	json_decref(old);
	return now;
}

/* Each organisation whose proxies or mappings changed: its dashboards refetch. */
static void publish_refetch(struct feed *f)
{
	json_t *now = org_seq_now(f->db), *v;
	const char *k;

	json_object_foreach(now, k, v)
	{
		json_t *old = json_object_get(f->org_seq, k);
		int64_t org = strtoll(k, NULL, 10);
		if (!old || !json_equal(json_array_get(old, 0), json_array_get(v, 0)))
			events_publish_to(org, "proxies", json_pack("{s:s}", "change", "proxies"));
		if (!old || !json_equal(json_array_get(old, 1), json_array_get(v, 1)))
			events_publish_to(org, "mappings", json_pack("{s:s}", "change", "mappings"));
	}
	json_decref(f->org_seq);
	f->org_seq = now;
}

/* What each client moved since the last look: {ip: [up, down]} (a counter that went back — a new
 * forwarder run, counters rebound — counts from 0), and the counters remembered for next time. */
static json_t *client_growth(struct feed *f, json_t *st)
{
	json_t *out = json_object(), *seen = json_object(), *v;
	const char *ip;

	json_object_foreach(json_object_get(st, "clients"), ip, v)
	{
		json_int_t up = json_integer_value(json_object_get(v, "bytes_up")),
			   down = json_integer_value(json_object_get(v, "bytes_down"));
		json_t *prev = json_object_get(f->client_bytes, ip);
		json_int_t pu = json_integer_value(json_array_get(prev, 0)),
			   pd = json_integer_value(json_array_get(prev, 1));
		json_int_t du = up >= pu ? up - pu : up, dd = down >= pd ? down - pd : down;
		if (prev && (du || dd))
			json_object_set_new(out, ip, json_pack("[I, I]", du, dd));
		json_object_set_new(seen, ip, json_pack("[I, I]", up, down));
	}
	json_decref(f->client_bytes);
	f->client_bytes = seen;
	return out;
}

static int by_moved_desc(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_array_get(*(json_t *const *)a, 3)),
		   y = json_integer_value(json_array_get(*(json_t *const *)b, 3));
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Per proxy, what the clients it carries now moved since the last look (only those in clients,
 * when given: an organisation's), the FEED_PROXIES_MAX busiest: [[id, up, down], ...]. A
 * client's history stays where it was counted: a failover moves only what comes after. */
static json_t *proxy_growth(struct feed *f, json_t *growth, json_t *clients)
{
	json_t *sum = json_object(), *v, *all = json_array(), *list = json_array();
	const char *ip, *id;
	size_t n;

	json_object_foreach(growth, ip, v)
	{
		json_t *carrier = json_object_get(json_object_get(f->clients, ip), "carrying_proxy_id"), *acc;
		char key[24];
		if (!json_is_integer(carrier) || (clients && !json_object_get(clients, ip)))
			continue;
		snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(carrier));
		if (!(acc = json_object_get(sum, key)))
			json_object_set_new(sum, key, acc = json_pack("[I, I]", (json_int_t)0, (json_int_t)0));
		json_array_set_new(acc, 0,
				   json_integer(json_integer_value(json_array_get(acc, 0)) +
						json_integer_value(json_array_get(v, 0))));
		json_array_set_new(acc, 1,
				   json_integer(json_integer_value(json_array_get(acc, 1)) +
						json_integer_value(json_array_get(v, 1))));
	}
	json_object_foreach(sum, id, v)
	{
		json_int_t u = json_integer_value(json_array_get(v, 0)), d = json_integer_value(json_array_get(v, 1));
		json_array_append_new(all, json_pack("[I, I, I, I]", (json_int_t)strtoll(id, NULL, 10), u, d, u + d));
	}
	json_decref(sum);
	n = json_array_size(all);
	if (n) {
		json_t **a = malloc(n * sizeof(*a));
		if (a) {
			for (size_t i = 0; i < n; i++)
				a[i] = json_array_get(all, i);
			qsort(a, n, sizeof(*a), by_moved_desc);
			for (size_t i = 0; i < n && i < FEED_PROXIES_MAX; i++)
				json_array_append_new(list,
						      json_pack("[O, O, O]", json_array_get(a[i], 0),
								json_array_get(a[i], 1), json_array_get(a[i], 2)));
			free(a);
		}
	}
	json_decref(all);
	return list;
}

/* The live "forwarder" event (issue 20): bounded whatever the number of clients and proxies —
 * the top-level counters, each group's scalars (closes by reason, errors by kind, the UDP relay's
 * state, DNS totals; no per-client or per-proxy maps); "at_ms", when the stats were read;
 * "interval_ms" since the previous read; and "proxies": [[id, bytes_up, bytes_down], ...], what
 * the busiest proxies' clients moved in that interval (stolen). */
static json_t *fwd_summary(json_t *st, json_t *proxies, long long at_ms, long long interval_ms)
{
	json_t *o = json_object(), *v;
	const char *k;

	json_object_foreach(st, k, v)
	{
		if (json_is_object(v) && strcmp(k, "clients") != 0) {
			json_t *g = json_object(), *x;
			const char *gk;
			json_object_foreach(v, gk, x) if (!json_is_object(x) && !json_is_array(x))
			    json_object_set(g, gk, x);
			json_object_set_new(o, k, g);
		} else if (!json_is_object(v) && !json_is_array(v)) {
			json_object_set(o, k, v);
		}
	}
	json_object_set_new(o, "proxies", proxies);
	json_object_set_new(o, "at_ms", json_integer(at_ms));
	json_object_set_new(o, "interval_ms", json_integer(interval_ms));
	return o;
}

/* The forwarder's stats, summed up (fwd_summary), at every look: every organisation's to
 * superadmins watching all of them, and to each organisation its own share (fwdstats_scoped),
 * when that changed (nothing moved: no event; the throughput chart moves on with zeros). */
static void publish_forwarder(struct feed *f, json_t *now, long long at_ms)
{
	json_t *seen = json_object(), *v, *growth = client_growth(f, now);
	long long interval = f->read_ms ? at_ms - f->read_ms : 0;
	const char *k;

	f->read_ms = at_ms;
	events_publish_to(EVENTS_ALL_ORGS, "forwarder",
			  fwd_summary(now, proxy_growth(f, growth, NULL), at_ms, interval));
	json_object_foreach(f->org_seq, k, v)
	{
		json_t *share = fwdstats_scoped(json_incref(now), f->db, strtoll(k, NULL, 10));
		if (!json_equal(share, json_object_get(f->org_fwd, k))) /* many organisations: only news */
			events_publish_to(EVENTS_ORG_ONLY(strtoll(k, NULL, 10)), "forwarder",
					  fwd_summary(share, proxy_growth(f, growth, json_object_get(share, "clients")),
						      at_ms, interval));
		json_object_set_new(seen, k, share);
	}
	json_decref(growth);
	json_decref(f->org_fwd);
	f->org_fwd = seen;
}

/* What of the HA pair's state is news (ha_publish): the role, the generation, the master's, the
 * transitions, the sync's error, and whether a backup is behind. Not: its lag in seconds (it moves
 * every tick), the times of the last sync and role change (a backup's sync answers every few
 * seconds), and the time in an error (curl's "after 4001 milliseconds"). */
static json_t *ha_key(json_t *now)
{
	json_t *key = json_deep_copy(now), *lag = json_object_get(now, "lag_seconds"), *e;
	char *t;

	if (!key)
		return NULL;
	json_object_set_new(key, "lag_seconds",
			    json_is_null(lag) ? json_null() : json_boolean(json_real_value(lag) > 0));
	json_object_del(key, "synced_at_ms");
	json_object_del(key, "role_at_ms");
	if ((e = json_object_get(key, "sync_error")) && json_is_string(e) && (t = strdup(json_string_value(e)))) {
		for (char *p = t; *p; p++) {
			size_t n = strspn(p, "0123456789");
			if (n && (strncmp(p + n, " ms", 3) == 0 || strncmp(p + n, " millisecond", 12) == 0))
				memset(p, '#', n);
			p += n ? n - 1 : 0;
		}
		json_object_set_new(key, "sync_error", json_string(t));
		free(t);
	}
	return key;
}

/* A daemon stopped or back (at most one tick late): a "daemons" event to everyone, as /status
 * says it. */
static void daemons_publish(struct feed *f)
{
	json_t *now = api_daemons(f->cfg->run_dir);

	if (now && !json_equal(now, f->daemons))
		events_publish("daemons", json_incref(now));
	json_decref(f->daemons);
	f->daemons = now;
}

/* The HA pair's state (a node with a peer): an "ha" event when it changed (ha_key). */
static void ha_publish(struct feed *f)
{
	json_t *now, *key;

	if (!f->cfg->ha_peer[0] || !(now = ha_state_json(f->cfg, f->db)))
		return;
	key = ha_key(now);
	if (!json_equal(key, f->ha))
		events_publish("ha", json_incref(now));
	json_decref(f->ha);
	f->ha = key;
	json_decref(now);
}

/* Quota warnings, blocks and unblocks the usage history found: an event each (to the client's
 * organisation); a block that changed is announced to the agent and the forwarder at once. */
static void quota_events(struct feed *f)
{
	int changed = 0;

	quota_publish(usage_take_events(f->usage, &changed));
	if (changed) {
		struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_MAPPINGS};
		if (f->nt)
			notify_broadcast(f->nt, &m);
		feed_update(f, TOPIC_MAPPINGS); /* the clients' new states, as events */
	}
}

/* A client moved from one proxy to another (on_down = failover): an event of its own. Returns
 * now. */
static json_t *carriers(struct feed *f, json_t *now)
{
	const char *k;
	json_t *v;

	json_object_foreach(now, k, v)
	{
		json_t *old = json_object_get(f->clients, k), *from = json_object_get(old, "carrying_proxy_id"),
		       *to = json_object_get(v, "carrying_proxy_id");
		/* the same mapping with the same primary, carried by another proxy: a failover (a block
		 * mapping is carried by its primary or nobody; an edited primary is the edit's) */
		if (json_is_integer(from) && json_is_integer(to) && !json_equal(from, to) &&
		    json_equal(json_object_get(old, "mapping_id"), json_object_get(v, "mapping_id")) &&
		    json_equal(json_object_get(old, "proxy_id"), json_object_get(v, "proxy_id")))
			events_publish_to(owner_of(f, NULL, k), "failover",
					  json_pack("{s:s, s:O, s:O, s:O, s:O}", "client_ip", k, "mapping_id",
						    json_object_get(v, "mapping_id"), "proxy_id",
						    json_object_get(v, "proxy_id"), "from", from, "to", to));
	}
	return now;
}

/* Webhooks (issue 20): a proxy that went down (from up or unknown) or came back up, and its
 * exit address changing, to the organisation that owns it. */
static void health_alerts(struct feed *f, const char *k, json_t *old, json_t *v)
{
	const char *os = old ? json_string_value(json_object_get(old, "status")) : NULL;
	const char *ns = json_string_value(json_object_get(v, "status"));
	const char *oip = old ? json_string_value(json_object_get(old, "exit_ip")) : NULL;
	const char *nip = json_string_value(json_object_get(v, "exit_ip"));
	const char *type = NULL;
	sqlite3_stmt *st = NULL;
	json_t *name = NULL;

	if (ns && strcmp(ns, "down") == 0 && (!os || strcmp(os, "down") != 0))
		type = "proxy.down";
	else if (ns && os && strcmp(ns, "up") == 0 && strcmp(os, "down") == 0)
		type = "proxy.up";
	if ((type || (oip && nip && *oip && *nip && strcmp(oip, nip) != 0)) &&
	    sqlite3_prepare_v2(f->db, "SELECT name FROM main.proxies WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, json_integer_value(json_object_get(v, "proxy_id")));
		if (sqlite3_step(st) == SQLITE_ROW)
			name = json_string((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (type)
		webhooks_emit(
		    owner_of(f, NULL, k), type,
		    json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "proxy_id", json_object_get(v, "proxy_id"),
			      "proxy", name ? name : json_null(), "status", json_object_get(v, "status"), "last_error",
			      json_object_get(v, "last_error"), "exit_ip", json_object_get(v, "exit_ip"), "latency_ms",
			      json_object_get(v, "latency_ms"), "checked_at", json_object_get(v, "checked_at")));
	if (oip && nip && *oip && *nip && strcmp(oip, nip) != 0)
		webhooks_emit(owner_of(f, NULL, k), "proxy.exit_ip_changed",
			      json_pack("{s:O?, s:O?, s:s, s:s}", "proxy_id", json_object_get(v, "proxy_id"), "proxy",
					name ? name : json_null(), "from", oip, "to", nip));
	json_decref(name);
}

/* Webhooks: a client that was active and is blocked now, unless an admin did it (its mapping or
 * its proxy disabled): why, to its organisation. */
static void client_alerts(struct feed *f, json_t *now)
{
	const char *k;
	json_t *v;

	json_object_foreach(now, k, v)
	{
		json_t *old = json_object_get(f->clients, k), *a;
		const char *why;
		if (!old || strcmp(json_string_value(json_object_get(old, "state")) ?: "", "active") != 0 ||
		    strcmp(json_string_value(json_object_get(v, "state")) ?: "", "blocked") != 0)
			continue;
		if (!(a = client_alert(f->db, k)))
			continue;
		why = json_string_value(json_object_get(a, "reason"));
		if (why && strcmp(why, "mapping_disabled") != 0 && strcmp(why, "proxy_disabled") != 0)
			webhooks_emit(owner_of(f, NULL, k), "client.blocked", a);
		else
			json_decref(a);
	}
}

/* Health and clients: what changed, each to the organisation that owns it. Owners and the rows
 * they own are read in one snapshot: a proxy deleted and its id given to another organisation's
 * new one in between would tag its health for the wrong one. */
static void publish_objects(struct feed *f, uint32_t topics)
{
	int snap = sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	json_t *old_owner = f->owner; /* removed objects are told to whom they belonged */

	f->owner = owners_now(f->db);
	if (topics & (TOPIC_HEALTH | TOPIC_PROXIES)) {
		json_t *now = health_now(f->db);
		const char *k;
		json_t *v;

		json_object_foreach(now, k, v)
		{ /* an up proxy whose exit IP changed: an event of its own */
			json_t *old = json_object_get(f->health, k);
			const char *oip = old ? json_string_value(json_object_get(old, "exit_ip")) : NULL;
			const char *nip = json_string_value(json_object_get(v, "exit_ip"));
			const char *oerr = old ? json_string_value(json_object_get(old, "last_error")) : NULL;
			const char *nerr = json_string_value(json_object_get(v, "last_error"));
			/* taken down for leaving from an address outside its expected_exit: an event of its own */
			if (nerr && strncmp(nerr, "exit_ip_mismatch", 16) == 0 &&
			    !(oerr && strncmp(oerr, "exit_ip_mismatch", 16) == 0))
				events_publish_to(owner_of(f, NULL, k), "exit_ip_mismatch",
						  json_pack("{s:O, s:s?}", "proxy_id", json_object_get(v, "proxy_id"),
							    "exit_ip", nip));
			if (oip && nip && *oip && *nip && strcmp(oip, nip) != 0)
				events_publish_to(owner_of(f, NULL, k), "exit_ip_changed",
						  json_pack("{s:O, s:s, s:s}", "proxy_id",
							    json_object_get(v, "proxy_id"), "from", oip, "to", nip));
			health_alerts(f, k, old, v);
		}
		f->health = diff(f, old_owner, f->health, now, "health", "proxy_id");
	}
	{
		json_t *now = carriers(f, clients_now(f->db));
		client_alerts(f, now);
		f->clients = diff(f, old_owner, f->clients, now, "client", "client_ip");
	}
	json_decref(old_owner);
	if (snap)
		sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL);
}

void feed_update(struct feed *f, uint32_t topics)
{
	if (topics == FEED_POLL) /* snapshots diff themselves; refetch events only for real changes */
		topics = TOPIC_HEALTH | TOPIC_AGENT | TOPIC_FORWARDER | moved_topics(f);
	else
		moved_topics(f);	/* a datagram told us: remember where the counters are */
	if (topics & TOPIC_FORWARDER) { /* the 2 s tick (FEED_FORWARDER_MS): has a health result gone stale? */
		sqlite3_stmt *st = NULL;
		char now[sizeof(f->stale)] = "";
		/* which proxies, summed up: a list could outgrow the buffer */
		if (sqlite3_prepare_v2(f->db,
				       "SELECT count(*) || ':' || coalesce(sum(proxy_id), 0) || ':' || "
				       "coalesce(sum(proxy_id * proxy_id), 0) FROM health_state WHERE stale",
				       -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
			snprintf(now, sizeof(now), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (strcmp(now, f->stale) != 0) {
			memcpy(f->stale, now, sizeof(now));
			topics |= TOPIC_HEALTH;
		}
	}
	if (topics & (TOPIC_HEALTH | TOPIC_PROXIES | TOPIC_MAPPINGS))
		publish_objects(f, topics);
	if (topics & (TOPIC_PROXIES | TOPIC_MAPPINGS))
		publish_refetch(f);
	if (topics & TOPIC_SETTINGS) { /* the gateway's settings: everyone reads them */
		struct timespec ts;
		events_publish("config", json_pack("{s:s}", "change", "config"));
		clock_gettime(CLOCK_REALTIME, &ts); /* quota_timezone may have moved the periods' start */
		usage_quota_now(f->usage, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		quota_events(f);
	}
	if (topics & TOPIC_USERS) /* organisations or users changed: each page asks /me what is its now */
		events_publish("orgs", json_pack("{s:s}", "change", "orgs"));
	if (topics & TOPIC_AGENT) {
		json_t *now = agent_now(f->db);
		const char *ie = json_string_value(json_object_get(now, "iface_error")),
			   *oie = json_string_value(json_object_get(f->agent, "iface_error")),
			   *le = json_string_value(json_object_get(now, "last_error")),
			   *ole = json_string_value(json_object_get(f->agent, "last_error"));
		/* webhooks: the agent failed to apply, or an interface went wrong — once per new error,
		 * not on every retry of the same one */
		if (json_object_get(f->agent, "errors_total") &&
		    ((le && *le && (!ole || strcmp(le, ole) != 0)) || (ie && *ie && (!oie || strcmp(ie, oie) != 0))))
			webhooks_emit(WEBHOOK_ORG_EVERY, "agent.error",
				      json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "last_error",
						json_object_get(now, "last_error"), "errors_total",
						json_object_get(now, "errors_total"), "iface_error",
						json_object_get(now, "iface_error"), "lan_iface",
						json_object_get(now, "lan_iface"), "wan_iface",
						json_object_get(now, "wan_iface")));
		if (!json_equal(now, f->agent)) {
			json_t *part = json_deep_copy(now); /* the kernel's state, not the others' clients */
			json_object_del(part, "active_count");
			json_object_del(part, "blocked_count");
			events_publish_to(EVENTS_ALL_ORGS, "agent", json_incref(now));
			events_publish_to(EVENTS_ONE_ORG, "agent", part);
		}
		json_decref(f->agent);
		f->agent = now;
	}
	if (topics & TOPIC_FORWARDER) {
		/* asked on the main thread every 2 s (and when told): a forwarder that does not answer soon is
		 * skipped this time (the usage history takes what it missed at the next answer) */
		json_t *now = fwdstats_load(f->cfg->run_dir, 500, 1);
		long long at_ms;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts); /* when read: rates are bytes over the time between reads */
		at_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		/* at the start, then hourly; a long backlog (the first prune after an upgrade) in parts,
		 * one a tick, so the events go on meanwhile */
		if (f->prune_more || at_ms - f->pruned_ms >= 3600 * 1000 || at_ms < f->pruned_ms) {
			f->pruned_ms = at_ms;
			audit_prune(f->db, AUDIT_PRUNE_BATCH, AUDIT_PRUNE_BATCHES, &f->prune_more);
		}
		if (now) /* the usage history: what the forwarder counted since it was last looked at */
			usage_note(f->usage, now, at_ms);
		else /* none this time: what was noted is still written when due (a stopped forwarder's
		      * last counts) */
			usage_tick(f->usage, at_ms);
		quota_events(f);
		if (now && !json_equal(now, f->forwarder)) { /* idle: no event (the chart fills in zeros) */
			publish_forwarder(f, now, at_ms);
			json_decref(f->forwarder);
			f->forwarder = now;
		} else {
			json_decref(now);
		}
		daemons_publish(f);
		ha_publish(f);
	}
}
