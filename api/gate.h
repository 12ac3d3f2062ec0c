/* gate.h - ask pgw-healthd to check a proxy now and wait for its answer (the health gate). */
#ifndef API_GATE_H
#define API_GATE_H

#include "config.h"

#include <jansson.h>
#include <stdint.h>

/* 1 up, 0 down (result filled either way), -ENOENT healthd not running, -ETIMEDOUT no answer.
 * *result: {proxy_id, status, latency_ms, exit_ip | error}, the caller's. */
int gate_check(const struct pgw_config *cfg, int64_t proxy_id, unsigned wait_ms, json_t **result);

#endif
