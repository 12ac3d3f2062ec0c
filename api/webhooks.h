/* webhooks.h - alerts to the organisations' receivers (issue 20). The feed (main thread) emits
 * events; a delivery thread POSTs each, as JSON, to every enabled webhook of the event's
 * organisation that lists its type, signed with HMAC-SHA256 under the webhook's secret
 * (X-Pgw-Signature: sha256=<hex of the body's MAC>), and retries a failure with backoff
 * (1, 2, 4 ... 32 s: 7 attempts), one at a time and in order per webhook. Through libcurl (multi
 * interface: one slow receiver does not hold up the others), http and https only, no redirects,
 * bounded in time; never to a loopback, private or LAN address unless the setting
 * webhook_allow_private says so (checked on the address connected to). */
#ifndef API_WEBHOOKS_H
#define API_WEBHOOKS_H

#include "http.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The event types a webhook may list, NULL-terminated; "test" is the test button's only. */
extern const char *const webhook_types[];
#define WEBHOOK_ORG_EVERY 0 /* an event of the gateway's (agent.error): every organisation's webhooks */

/* Start the delivery thread (after curl_global_init). 0, or -1 (logged). */
int webhooks_start(struct api *a);
void webhooks_stop(void);
/* Queue event type for organisation org (or WEBHOOK_ORG_EVERY) with data (stolen). Cheap: the
 * thread finds the webhooks. Events beyond a bounded queue are dropped (logged). */
void webhooks_emit(int64_t org, const char *type, json_t *data);

/* One delivery now, in the calling thread (the test button): the same request the thread makes.
 * Records the result on the row. 1 delivered (2xx), 0 not; *status the HTTP status (0 none),
 * err why not. */
int webhook_deliver_now(sqlite3 *db, const struct pgw_config *cfg, int64_t id, const char *url, const char *secret,
			const char *type, json_t *data, long *status, char *err, size_t errlen, long *ms);

/* "sha256=" and the hex HMAC-SHA256 of body under secret (out: at least 72 bytes). */
void webhook_signature(const char *secret, const char *body, size_t len, char *out);
/* A webhook URL: http or https, a host, no user or password, at most 2048 bytes. 0, or -1 with
 * the reason in err. */
int webhook_url_check(const char *url, char *err, size_t errlen);

#endif
