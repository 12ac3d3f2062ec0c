/* dbwatch.h - the polling fallback of the notify path: every poll_ms, compare the DB's
 * PRAGMA data_version and call back when another connection committed since the last look.
 * With a fingerprint query (e.g. a sum over change_seq), a commit only counts when it also
 * changed the fingerprint: a daemon reloads for the rows it cares about, not for every commit.
 * A daemon that reloads because of a datagram calls dbwatch_sync() so the same change is not
 * reported twice. A DB that stops reading (data_version fails) is a change too, once, and so is
 * its reading again: the daemon's reload finds out, and its own retry takes over meanwhile. */
#ifndef PGW_DBWATCH_H
#define PGW_DBWATCH_H

#include "evloop.h"

#include <sqlite3.h>

struct dbwatch;

/* What enforcement depends on: proxies, mappings, health status, settings (change_seq, 0005),
 * and which 'up' results have gone stale (fresh_until, 0008). The agent and the forwarder. */
#define DBWATCH_ENFORCEMENT_SQL                                                                                        \
	"SELECT (SELECT sum(seq) FROM change_seq) || '/' || (SELECT coalesce(group_concat(proxy_id), '') FROM "        \
	"(SELECT proxy_id FROM health_state WHERE stale ORDER BY proxy_id))"

typedef void (*dbwatch_cb)(void *arg);

/* fingerprint_sql: NULL, or a static query whose single value (compared as text) changes with
 * what matters. It is evaluated on every poll, commit or not, so it may depend on the time
 * (DBWATCH_ENFORCEMENT_SQL: health results going stale). */
struct dbwatch *dbwatch_new(struct evloop *ev, sqlite3 *db, uint64_t poll_ms, const char *fingerprint_sql,
			    dbwatch_cb cb, void *arg);
void dbwatch_free(struct dbwatch *w);
/* Record the current data_version (and fingerprint) as seen. Call it BEFORE reading the state
 * the change is about, never after: a fingerprint taken after the read could hide a change
 * that happened in between (a health result going stale while a write waited on a lock). */
void dbwatch_sync(struct dbwatch *w);
/* How many changes the fallback has caught (for stats and tests). */
unsigned long dbwatch_hits(const struct dbwatch *w);

#endif
