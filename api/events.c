/* events.c - see events.h. */
#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *text[EVENTS_RING]; /* "id: N\nevent: T\ndata: {...}\n\n" */
	int64_t audience[EVENTS_RING];
	uint64_t next_id; /* id of the next event; ids start at 1 */
	int stopping;
} ev = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, {0}, 1, 0};

void events_publish(const char *type, json_t *data)
{
	events_publish_to(EVENTS_EVERYONE, type, data);
}

void events_publish_to(int64_t audience, const char *type, json_t *data)
{
	char *json = json_dumps(data, JSON_COMPACT), *text = NULL;
	size_t slot;

	json_decref(data);
	if (!json)
		return;
	pthread_mutex_lock(&ev.lock);
	if (asprintf(&text, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)ev.next_id, type, json) > 0) {
		slot = ev.next_id % EVENTS_RING;
		free(ev.text[slot]);
		ev.text[slot] = text;
		ev.audience[slot] = audience;
		ev.next_id++;
		pthread_cond_broadcast(&ev.cond);
	}
	pthread_mutex_unlock(&ev.lock);
	free(json);
}

uint64_t events_last_id(void)
{
	uint64_t id;

	pthread_mutex_lock(&ev.lock);
	id = ev.next_id - 1;
	pthread_mutex_unlock(&ev.lock);
	return id;
}

/* Send what fits of c->pending; 1 when it is all gone. */
static size_t send_pending(struct events_cursor *c, char *buf, size_t cap, int *done)
{
	size_t left = strlen(c->pending + c->off), k = left < cap ? left : cap;

	memcpy(buf, c->pending + c->off, k);
	c->off += k;
	*done = k == left;
	if (*done) {
		free(c->pending);
		c->pending = NULL;
		c->off = 0;
	}
	return k;
}

/* An event for audience reaches a subscriber watching org. */
static int for_cursor(int64_t audience, int64_t org)
{
	if (audience == EVENTS_EVERYONE)
		return 1;
	if (audience == EVENTS_ALL_ORGS)
		return org == EVENTS_ALL_ORGS;
	if (audience == EVENTS_ONE_ORG)
		return org != EVENTS_ALL_ORGS;
	if (audience <= EVENTS_ORG_ONLY(0))
		return org == EVENTS_ORG_ONLY(0) - audience;
	return org == EVENTS_ALL_ORGS || org == audience;
}

ssize_t events_read(struct events_cursor *c, char *buf, size_t cap, int timeout_ms)
{
	struct timespec until;
	size_t n = 0;
	int rc = 0, done;

	if (c->pending) { /* the rest of a large event before anything else */
		n = send_pending(c, buf, cap, &done);
		if (done)
			c->last++;
		return (ssize_t)n;
	}
	clock_gettime(CLOCK_REALTIME, &until); /* pthread_cond_timedwait's clock */
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev.lock);
again: /* until there is something for this subscriber, or the time is up */
	while (!ev.stopping && c->last + 1 >= ev.next_id && rc == 0)
		rc = pthread_cond_timedwait(&ev.cond, &ev.lock, &until);
	if (ev.stopping) {
		pthread_mutex_unlock(&ev.lock);
		return -1;
	}
	if (c->last + 1 < ev.next_id && ev.next_id - (c->last + 1) > EVENTS_RING - 1) {
		/* fell behind: what it missed is gone; tell it to start over */
		c->last = ev.next_id - 1;
		n = (size_t)snprintf(buf, cap, "id: %llu\nevent: reset\ndata: {}\n\n", (unsigned long long)c->last);
	}
	while (c->last + 1 < ev.next_id && n < cap) {
		const char *t = ev.text[(c->last + 1) % EVENTS_RING];
		size_t len = strlen(t);
		if (!for_cursor(ev.audience[(c->last + 1) % EVENTS_RING], c->org)) {
			c->last++; /* another organisation's: as if it were not there */
			continue;
		}
		if (n + len > cap) {
			if (n > 0)
				break;		/* whole events first; this one starts the next read */
			c->pending = strdup(t); /* larger than a whole read: in parts, from our own copy */
			c->off = 0;
			if (c->pending)
				n = send_pending(c, buf, cap, &done);
			else
				c->last++; /* out of memory: skip it rather than stall */
			break;
		}
		memcpy(buf + n, t, len);
		n += len;
		c->last++;
	}
	/* only other organisations' events: keep waiting (an early heartbeat would tell that they
	 * have events) */
	if (n == 0 && rc == 0)
		goto again;
	pthread_mutex_unlock(&ev.lock);
	if (n == 0)
		n = (size_t)snprintf(buf, cap, ": heartbeat\n\n");
	return (ssize_t)n;
}

void events_cursor_free(struct events_cursor *c)
{
	free(c->pending);
	c->pending = NULL;
}

void events_shutdown(void)
{
	pthread_mutex_lock(&ev.lock);
	ev.stopping = 1;
	pthread_cond_broadcast(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
}
