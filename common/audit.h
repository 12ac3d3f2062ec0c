/* audit.h - append a row to the audit log (CRUD, logins, admin CLI actions). Secrets must be
 * redacted by the caller before before/after JSON reaches here. */
#ifndef PGW_AUDIT_H
#define PGW_AUDIT_H

#include <sqlite3.h>

struct audit_entry {
	const char *username;
	const char *remote_addr;
	const char *action;	 /* "user.create", "settings.update", "login" ... */
	const char *object_type; /* "user", "proxy", "mapping", "settings" ... */
	const char *object_id;
	const char *before_json; /* NULL or valid JSON */
	const char *after_json;	 /* NULL or valid JSON */
	const char *request_id;
	const char *result; /* "ok" (NULL), "denied", "failed" */
	long long org_id;   /* the organisation it happened in; 0: gateway-wide (NULL) */
};

/* 0 or -EIO. */
int audit_record(sqlite3 *db, const struct audit_entry *e);

/* Delete rows older than the setting audit_retention_days (0: keep all), batch rows a transaction
 * (other writers get the database between them), at most max_batches batches a call, so that
 * pgw-api's caller (the feed, on its main loop's 2 s timer) is held briefly however many there
 * are. The number deleted, or -1 (logged); *more: 1 when the call stopped at max_batches with rows
 * perhaps left (0 after a failed step: the caller's next regular time). */
int audit_prune(sqlite3 *db, int batch, int max_batches, int *more);
#define AUDIT_PRUNE_BATCH   5000
#define AUDIT_PRUNE_BATCHES 10 /* 50,000 rows a call; the caller calls again soon while *more */

#endif
