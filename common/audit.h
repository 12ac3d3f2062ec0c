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

#endif
