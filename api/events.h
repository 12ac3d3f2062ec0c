/* events.h - the live event stream behind GET /api/v1/events (Server-Sent Events): a ring of
 * the last EVENTS_RING events with increasing ids, published by the main thread, read by any
 * number of subscriber threads (each blocks until there is something new or a heartbeat). */
#ifndef API_EVENTS_H
#define API_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_RING	    1024
#define EVENTS_HEARTBEAT_MS 15000

/* Who an event is for: one organisation's subscribers (an id > 0) and those who watch every
 * organisation (superadmins), or one of these. */
#define EVENTS_EVERYONE 0
#define EVENTS_ALL_ORGS (-1) /* only subscribers who watch every organisation */
#define EVENTS_ONE_ORG	(-2) /* only subscribers who watch one organisation (or none) */
/* only the subscribers watching organisation org (> 0), not those who watch every one (an
 * organisation's own share of something superadmins get whole) */
#define EVENTS_ORG_ONLY(org) (-16 - (int64_t)(org))
/* Publish {type, data} for everyone; data is stolen. */
void events_publish(const char *type, json_t *data);
/* The same, for audience (an organisation id or one of the EVENTS_* above). */
void events_publish_to(int64_t audience, const char *type, json_t *data);
uint64_t events_last_id(void);

/* Where one subscriber is: the last event id it has whole, and the rest of an event that did
 * not fit its last read (events of any size stream through a buffer of any size). */
struct events_cursor {
	int64_t org; /* whose events it gets: an organisation's, every one's (-1), or none (0) */
	uint64_t last;
	char *pending; /* malloc'd rest of event last + 1, or NULL */
	size_t off;    /* bytes of pending already sent */
};
/* Copy events with ids > c->last that are for c->org into buf (at most cap bytes), whole or, for one that does not
 * fit, as much as fits (the rest comes first next time), advancing the cursor. When there is
 * nothing, wait up to timeout_ms, then write a heartbeat comment. A subscriber that fell behind
 * the ring gets a "reset" event (refetch everything). Returns bytes, or -1 once
 * events_shutdown() was called. */
ssize_t events_read(struct events_cursor *c, char *buf, size_t cap, int timeout_ms);
void events_cursor_free(struct events_cursor *c);
/* Wake every subscriber and make them end (pgw-api stopping). */
void events_shutdown(void);

#endif
