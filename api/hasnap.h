/* hasnap.h - the HA pair's configuration snapshot (issue 22): what the master sends and how
 * the backup makes it its own. Plain SQLite and jansson (fuzzed by tests/fuzz/fuzz_hasnap.c).
 *
 * A snapshot: {"origin", "generation", "schema", and when the configuration changed "tables":
 * {NAME: {"columns": [...], "rows": [[...], ...]}}} for each synced table (proxies, mappings and
 * their failover lists, users, organisations and their members, networks and settings, API keys,
 * webhooks, the gateway's settings but those naming this node's own interfaces and files). */
#ifndef API_HASNAP_H
#define API_HASNAP_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

/* Read this node's configuration (with_tables) or only its version, in one read transaction.
 * NULL on a database error. */
json_t *hasnap_build(sqlite3 *db, int with_tables);
/* A snapshot's shape against this node's schema version: 0, or -1 with the reason in err. */
int hasnap_check(const json_t *snap, int schema, char *err, size_t errlen);
/* Make this node's configuration the snapshot's (checked first) in one transaction: rows the
 * master no longer has deleted, new ones inserted, changed ones updated (the rest untouched, so
 * per-node state such as proxy health stays), the version recorded in ha_state. On an error
 * nothing changes: -1 with err. */
int hasnap_apply(sqlite3 *db, const json_t *snap, char *err, size_t errlen);

#endif
