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
	uint64_t next_id;	 /* id of the next event; ids start at 1 */
	int stopping;
} ev = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 1, 0 };

void events_publish(const char *type, json_t *data)
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

ssize_t events_read(uint64_t *last, char *buf, size_t cap, int timeout_ms)
{
	struct timespec until;
	size_t n = 0;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until); /* pthread_cond_timedwait's clock */
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev.lock);
	while (!ev.stopping && *last + 1 >= ev.next_id && rc == 0)
		rc = pthread_cond_timedwait(&ev.cond, &ev.lock, &until);
	if (ev.stopping) {
		pthread_mutex_unlock(&ev.lock);
		return -1;
	}
	if (*last + 1 < ev.next_id && ev.next_id - (*last + 1) > EVENTS_RING - 1) {
		/* fell behind: what it missed is gone; tell it to start over */
		*last = ev.next_id - 1;
		n = (size_t)snprintf(buf, cap, "id: %llu\nevent: reset\ndata: {}\n\n", (unsigned long long)*last);
	}
	while (*last + 1 < ev.next_id) {
		const char *t = ev.text[(*last + 1) % EVENTS_RING];
		size_t len = strlen(t);
		if (n + len > cap)
			break;
		memcpy(buf + n, t, len);
		n += len;
		(*last)++;
	}
	pthread_mutex_unlock(&ev.lock);
	if (n == 0)
		n = (size_t)snprintf(buf, cap, ": heartbeat\n\n");
	return (ssize_t)n;
}

void events_shutdown(void)
{
	pthread_mutex_lock(&ev.lock);
	ev.stopping = 1;
	pthread_cond_broadcast(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
}
