/* feed.h - turns what changed in the DB (told by notify or the polling fallback) into typed
 * live events: health, exit_ip_changed, client (blocked/active), agent, proxies, mappings,
 * config, forwarder, quota. Runs on pgw-api's main thread with its own DB connection. */
#ifndef API_FEED_H
#define API_FEED_H

#include "config.h"
#include "notify.h"

#include <sqlite3.h>
#include <stdint.h>

struct feed;

/* nt: where a change it makes itself (a client's quota block) is announced to the other daemons */
struct feed *feed_new(sqlite3 *db, const struct pgw_config *cfg, struct notify *nt);
void feed_free(struct feed *f);
/* Compare with the last snapshot and publish the differences (topics: NOTIFY topics, or ~0). */
/* topics: what a datagram said changed, or FEED_POLL when the polling fallback only saw a commit. */
#define FEED_POLL 0xffffffffu
void feed_update(struct feed *f, uint32_t topics);

#endif
