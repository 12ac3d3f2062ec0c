/* ha.h - pgw-api's part of the HA pair (issue 22): the master serves its configuration to the
 * peer (GET /api/v1/ha/sync, authenticated and encrypted under the pair's shared secret), the
 * backup pulls it into its own DB as it changes, and a backup's API refuses writes. */
#ifndef API_HA_H
#define API_HA_H

#include "http.h"

#include <jansson.h>

/* The sync thread (a node with PGW_HA_PEER only). 0, or -1. */
int ha_start(struct api *api);
void ha_stop(void);
/* GET /api/v1/ha (the pair's state, any signed-in user) and GET /api/v1/ha/sync (the peer). */
int res_ha(struct req *r, const char *const *seg, int nseg);
/* The pair's state as GET /api/v1/ha gives it ({"enabled": false} without a pair), or NULL (the
 * DB unreadable). Also the live "ha" event (feed.c). */
struct pgw_config;
json_t *ha_state_json(const struct pgw_config *cfg, sqlite3 *db);
/* A write that a backup must refuse: replies (503 ha_backup, naming the master) and returns 1;
 * 0 when it may go on. */
int ha_refuse_write(struct req *r);
/* /metrics: pgw_ha_role, pgw_ha_generation, pgw_ha_lag_seconds (nothing without a pair). */
void ha_metrics(struct api *api, sqlite3 *db, FILE *out);

#endif
