/* dbwatch.h - the polling fallback of the notify path: every poll_ms, compare the DB's
 * PRAGMA data_version and call back when another connection committed since the last look.
 * With a fingerprint query (e.g. a sum over change_seq), a commit only counts when it also
 * changed the fingerprint: a daemon reloads for the rows it cares about, not for every commit.
 * A daemon that reloads because of a datagram calls dbwatch_sync() so the same change is not
 * reported twice. */
#ifndef PGW_DBWATCH_H
#define PGW_DBWATCH_H

#include "evloop.h"

#include <sqlite3.h>

struct dbwatch;

typedef void (*dbwatch_cb)(void *arg);

/* fingerprint_sql: NULL, or a static query whose single integer changes with what matters. */
struct dbwatch *dbwatch_new(struct evloop *ev, sqlite3 *db, uint64_t poll_ms, const char *fingerprint_sql, dbwatch_cb cb,
			    void *arg);
void dbwatch_free(struct dbwatch *w);
/* Record the current data_version as seen. */
void dbwatch_sync(struct dbwatch *w);
/* How many changes the fallback has caught (for stats and tests). */
unsigned long dbwatch_hits(const struct dbwatch *w);

#endif
