/* quota.h - clients' quotas (issue 19, migration 0023), kept by pgw-api: what each client used
 * this period (client_quota.used: pgw-forwarder's bytes each way, TCP and UDP, added with the
 * usage history), its period (quota_period in the setting quota_timezone), the 80 % warning, and
 * mappings.quota_exceeded, which blocks the client (mapping_state) until the period ends, an
 * admin grants more or resets it, or its quota is raised. pgw-forwarder cuts at the byte by
 * itself; this makes the block last and tells everyone. */
#ifndef API_QUOTA_H
#define API_QUOTA_H

#include "config.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

/* Inside the caller's write transaction: add delta (ip -> [bytes_up, bytes_down, ...]; NULL: none)
 * to the used bytes of clients with a quota, start new periods (a changed quota_period or
 * quota_timezone moves the period's start: a new period too), set or clear quota_exceeded.
 * Events to publish are appended to events ({client_ip, state, used, limit, ..., org_id}). How
 * many clients' blocks changed or periods began (the forwarder must reload), or -1 on a
 * database error. */
int quota_apply(sqlite3 *db, const struct pgw_config *cfg, json_t *delta, int64_t now, json_t *events);
/* Publish events as quota_apply made them (each to its client's organisation); steals events. */
void quota_publish(json_t *events);
/* The client's quota as the API shows it (NULL: it has none). */
json_t *quota_json(sqlite3 *db, const struct pgw_config *cfg, const char *ip, int64_t now);

#endif
