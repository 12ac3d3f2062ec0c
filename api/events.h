/* events.h - the live event stream behind GET /api/v1/events (Server-Sent Events): a ring of
 * the last EVENTS_RING events with increasing ids, published by the main thread, read by any
 * number of subscriber threads (each blocks until there is something new or a heartbeat). */
#ifndef API_EVENTS_H
#define API_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_RING 1024
#define EVENTS_HEARTBEAT_MS 15000

/* Publish {type, data}; data is stolen. */
void events_publish(const char *type, json_t *data);
uint64_t events_last_id(void);
/* Copy whole events with ids > *last into buf (at most cap bytes), advancing *last. When
 * there is none, wait up to timeout_ms, then write a heartbeat comment. A subscriber that fell
 * behind the ring gets a "reset" event (refetch everything). Returns bytes, or -1 once
 * events_shutdown() was called. */
ssize_t events_read(uint64_t *last, char *buf, size_t cap, int timeout_ms);
/* Wake every subscriber and make them end (pgw-api stopping). */
void events_shutdown(void);

#endif
