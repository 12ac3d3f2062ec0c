/* usage.h - usage history per client (issue 19): pgw-forwarder's per-client counters, as
 * pgw-api reads them (every 2 s), added up into minute, hour and day buckets in the state DB
 * (migration 0020), flushed every USAGE_FLUSH_MS; what was added is remembered with the
 * forwarder's run (its start time), so a restarted pgw-api takes up where the DB is. Bytes (TCP
 * and UDP) are counted as they flow (the forwarder's counters, written every second): a forwarder
 * killed loses at most its last second. The same bytes go to the clients' quotas (quota.h), in
 * the same transaction; a client with a quota is flushed at once, not every USAGE_FLUSH_MS. */
#ifndef API_USAGE_H
#define API_USAGE_H

#include "config.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#define USAGE_FLUSH_MS 5000

struct usage;

struct usage *usage_new(sqlite3 *db, const struct pgw_config *cfg);
void usage_free(struct usage *u);
/* The forwarder's stats as just read (its "started_ms" and "clients"); now: unix ms. Adds to the
 * buckets at most every USAGE_FLUSH_MS (and prunes old ones once an hour). */
void usage_note(struct usage *u, json_t *fwd, int64_t now_ms);
/* No stats this time (the forwarder stopped, or did not answer): what was noted before is still
 * written when due, so a forwarder's last counts do not wait for its next run. */
void usage_tick(struct usage *u, int64_t now_ms);
/* Look at the quotas now (a setting changed): periods, grants, raised quotas. */
void usage_quota_now(struct usage *u, int64_t now_ms);
/* The quota events since the last call (a JSON array, the caller's), and in *changed how many
 * mappings' quota blocks changed (a notify is due). */
json_t *usage_take_events(struct usage *u, int *changed);

#endif
