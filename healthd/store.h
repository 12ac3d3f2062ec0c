/* store.h - pgw-healthd's writes to the state DB: each probe result in one transaction (the
 * current row with its fresh_until, a history row, the history trimmed), and what the
 * pipelined probe found. */
#ifndef HEALTHD_STORE_H
#define HEALTHD_STORE_H

#include "healthd.h"

void store_result(struct healthd *h, const struct target *t, const struct probe_result *r);
/* 0, or -EIO (logged). */
int store_pipelining(struct healthd *h, int64_t id, int v);

#endif
