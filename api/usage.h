/* usage.h - usage history per client (issue 19): pgw-forwarder's per-client counters, as
 * pgw-api reads them (every 2 s), added up into minute, hour and day buckets in the state DB
 * (migration 0020), flushed every USAGE_FLUSH_MS; what was added is remembered with the
 * forwarder's run (its start time), so a restarted pgw-api takes up where the DB is. Bytes are
 * counted when a connection ends (the forwarder's counters): a forwarder killed with
 * connections open loses theirs. */
#ifndef API_USAGE_H
#define API_USAGE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#define USAGE_FLUSH_MS 5000

struct usage;

struct usage *usage_new(sqlite3 *db);
void usage_free(struct usage *u);
/* The forwarder's stats as just read (its "started_ms" and "clients"); now: unix ms. Adds to the
 * buckets at most every USAGE_FLUSH_MS (and prunes old ones once an hour). */
void usage_note(struct usage *u, json_t *fwd, int64_t now_ms);

#endif
