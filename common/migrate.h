/* migrate.h - schema migrations from db/migrations/NNNN_*.sql, compiled into the binaries. */
#ifndef PGW_MIGRATE_H
#define PGW_MIGRATE_H

#include <sqlite3.h>
#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* Generated at build time from db/migrations/ (build/gen/migrations.c), ascending versions. */
extern const struct migration migrations_builtin[];
extern const size_t migrations_builtin_count;

int migrate_latest(const struct migration *list, size_t n);
/* Apply every migration newer than the DB's user_version up to target (-1: latest), each in its
 * own transaction together with the version bump. *from and *to report the versions. A DB newer
 * than the list is refused with -EPROTO. A failing migration is rolled back and named in err. */
int migrate_run(sqlite3 *db, const struct migration *list, size_t n, int target, int *from, int *to, char *err,
		size_t errlen);

/* The DB's schema is exactly the one this build knows: 0, or -EPROTO with a message that says
 * what to do (a newer DB: upgrade pgw or restore a backup; an older one: pgwctl migrate). */
int migrate_check_schema(sqlite3 *db, char *err, size_t errlen);

#endif
