/* gate.h - ask pgw-healthd to check a proxy now and wait for its answer (the health gate). */
#ifndef API_GATE_H
#define API_GATE_H

#include "config.h"
#include "http.h"

#include <sqlite3.h>

#include <jansson.h>
#include <stdint.h>

/* 1 up, 0 down (result filled either way), -ENOENT healthd not running, -ETIMEDOUT no answer,
 * -EIO no socket for the answer (logged), -ENOMEM.
 * *result: {proxy_id, status, latency_ms, exit_ip | error}, the caller's. */
int gate_check(const struct pgw_config *cfg, int64_t proxy_id, unsigned wait_ms, json_t **result);

/* The same for k distinct proxies side by side (NOTIFY_CHECK_WINDOW at a time; once one is down
 * or not answered, none asked after total_ms): st[i] as notify_check_many's, results[i] (the caller's) for st[i]
 * 0 or 1, else NULL. 0, -ENOENT healthd not running, -EIO no reply socket, -ENOMEM (st[] then not to be read). */
int gate_check_many(const struct pgw_config *cfg, const int64_t *ids, size_t k, unsigned wait_ms, unsigned total_ms,
		    json_t **results, int *st);

/* How long the gate waits for healthd: every probe step may take health_timeout. */
unsigned gate_wait_ms(sqlite3 *db, const struct pgw_config *cfg);
/* The reply for gate_check()'s errors: 503 for -ENOENT (healthd not running), -EIO (no socket for
 * its answer) or -ETIMEDOUT, 500 for -ENOMEM. */
int reply_gate_unavailable(struct req *r, int err);

#endif
