/* crud.h - the scaffolding resource handlers share: the collection router, read-only starts,
 * DELETE with audit, database errors, and the forwarder's stats. */
#ifndef API_CRUD_H
#define API_CRUD_H

#include "http.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

/* A collection resource: GET and POST on /things, GET, PUT (if put), PATCH and DELETE on
 * /things/{id}; 405 for another method, 404 for a deeper path. Auth and the DB are the
 * caller's; resource-specific sub-paths are handled before calling crud_route(). */
struct crud {
	const char *noun;			 /* "proxy": for messages */
	const char *ids_sql;			 /* "SELECT id FROM ... ORDER BY id": the list, item by item */
	int (*list)(struct req *r, sqlite3 *db); /* or a whole list in one query (large collections) */
	json_t *(*get)(sqlite3 *db, int64_t id); /* one item as the API shows it, or NULL */
	int (*save)(struct req *r, sqlite3 *db, int64_t id, int partial); /* id < 0: create */
	int (*del)(struct req *r, sqlite3 *db, int64_t id);
	int put; /* PUT (full replace) allowed */
};
int crud_route(struct req *r, sqlite3 *db, const struct crud *c, const char *const *seg, int nseg);

/* A column as a JSON integer, or null. */
json_t *json_nullable_int(sqlite3_stmt *st, int col);
/* 500 with SQLite's message. */
int reply_db_error(struct req *r, sqlite3 *db);
/* The start of a read-only resource: signed in (an admin, when admin_only gives the reason for
 * the 403), GET only, the thread's DB. NULL when a reply has been sent. */
sqlite3 *read_only_start(struct req *r, const char *admin_only);
/* DELETE one row (sql: "DELETE FROM ... WHERE id = ?1"), audit it with before (stolen), notify
 * topic, 204. */
int reply_deleted(struct req *r, sqlite3 *db, const char *sql, int64_t id, const char *action, const char *kind,
		  json_t *before, unsigned topic);
/* The forwarder's stats as it answers "stats" on its control socket (fwdctl.h) — at most a
 * second old, shared by all threads — or NULL when it is not running or does not answer within
 * timeout_ms (a reference: json_decref it). */
#define FWDSTATS_TIMEOUT_MS 2000
json_t *fwdstats_load(const char *run_dir, int timeout_ms, int fresh); /* fresh: ask, whatever the age */
/* What of the forwarder's stats all (stolen) one organisation may see: its clients and proxies
 * only, its totals added up from its clients, none of the gateway-wide counters; all itself for
 * API_ORG_ALL. Nothing for org 0. */
json_t *fwdstats_scoped(json_t *all, sqlite3 *db, int64_t org);

#endif
