/* store.h - pgw-healthd's writes to the state DB: each probe result in one transaction (the
 * current row with its fresh_until, a history row, the history trimmed), and what the
 * pipelined probe found. */
#ifndef HEALTHD_STORE_H
#define HEALTHD_STORE_H

#include "healthd.h"

/* r, had at wall-clock time at (its checked_at; fresh_until counts from it, so a result that
 * waited for a locked DB is not trusted longer). 0, or -EAGAIN when the DB refused it (busy or
 * broken; logged once per spell): keep it and call again after h->store_retry_at; -ESTALE when the
 * proxy changed (0031: verify_gen) or went since t was loaded: the result is not its, dropped. *moved: how many
 * failover mappings it gave another carrier (logged; a move between two proxies is audited). */
int store_result(struct healthd *h, const struct target *t, const struct probe_result *r, time_t at, int *moved);
/* A capability a probe found: proxy_health.pipelining, or .early_data when early. 0, or -EIO (logged). */
int store_capability(struct healthd *h, int64_t id, int early, int v);
/* A side check's verdict for proxy id (what: "DNS", "UDP", for the log): sql sets the columns
 * from ?2 (status), ?3 (err when !ok, else "") and ?4 (ms when ok and ms >= 0, else NULL) for
 * proxy_id ?1. 0, or -EIO (logged). */
int store_check(struct healthd *h, int64_t id, const char *what, const char *sql, const char *status, int ok,
		const char *err, int ms);

#endif
