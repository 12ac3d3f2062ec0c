/* throttle.c - see throttle.h. */
#include "throttle.h"

#include "evloop.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SLOTS 1024

struct slot {
	char key[96];
	uint64_t start_ms; /* window start; 0: free */
	unsigned fails;
};

static struct slot slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The key's slot, or a free/expired/oldest one claimed for it. Call locked. */
static struct slot *find(const char *key, int create)
{
	uint64_t now = ev_now_ms();
	struct slot *victim = NULL;

	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &slots[i];
		if (s->start_ms && now - s->start_ms >= THROTTLE_WINDOW_S * 1000ull)
			s->start_ms = 0; /* window over */
		if (s->start_ms && strcmp(s->key, key) == 0)
			return s;
		if (!victim || !s->start_ms || (victim->start_ms && s->start_ms < victim->start_ms))
			victim = s;
	}
	if (!create)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->start_ms = now;
	victim->fails = 0;
	return victim;
}

unsigned throttle_check(const char *key, unsigned max_fails)
{
	unsigned wait = 0;
	struct slot *s;

	pthread_mutex_lock(&lock);
	s = find(key, 0);
	if (s && s->fails >= max_fails) {
		uint64_t end = s->start_ms + THROTTLE_WINDOW_S * 1000ull, now = ev_now_ms();
		wait = end > now ? (unsigned)((end - now + 999) / 1000) : 1;
	}
	pthread_mutex_unlock(&lock);
	return wait;
}

void throttle_fail(const char *key)
{
	pthread_mutex_lock(&lock);
	find(key, 1)->fails++;
	pthread_mutex_unlock(&lock);
}

void throttle_reset(const char *key)
{
	struct slot *s;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0)))
		s->start_ms = 0;
	pthread_mutex_unlock(&lock);
}
