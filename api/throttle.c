/* throttle.c - see throttle.h. */
#include "throttle.h"

#include "evloop.h"
#include "net.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SLOTS 4096

struct slot {
	char key[160];
	uint64_t last_ms; /* the last failure (or remembering); 0: free */
	unsigned fails;
	unsigned keep_s; /* forgotten this long after last_ms */
	int pinned;	 /* a count of an existing user's (throttle_pin): never reused for another key */
};

static struct slot slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The key's slot, or a free/forgotten/oldest unpinned one claimed for it (at most half the
 * slots are pinned: there is always one). Call locked. */
static struct slot *find(const char *key, int create, uint64_t now)
{
	struct slot *victim = NULL;

	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &slots[i];
		if (s->last_ms && now > s->last_ms && now - s->last_ms >= s->keep_s * 1000ull)
			s->last_ms = 0; /* forgotten (pinned or not) */
		if (s->last_ms && strcmp(s->key, key) == 0)
			return s;
		if (s->last_ms && s->pinned)
			continue;
		if (!victim || !s->last_ms || (victim->last_ms && s->last_ms < victim->last_ms))
			victim = s;
	}
	if (!create)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->last_ms = now;
	victim->fails = 0;
	victim->keep_s = THROTTLE_FORGET_S;
	victim->pinned = 0;
	return victim;
}

void throttle_pin(const char *key)
{
	struct slot *s, *oldest = NULL;
	int n = 0;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())) && !s->pinned) {
		for (int i = 0; i < SLOTS; i++)
			if (slots[i].last_ms && slots[i].pinned) {
				n++;
				if (!oldest || slots[i].last_ms < oldest->last_ms)
					oldest = &slots[i];
			}
		if (n >= SLOTS / 2) /* the least recently failed of them goes back to the common pool */
			oldest->pinned = 0;
		s->pinned = 1;
	}
	pthread_mutex_unlock(&lock);
}

unsigned throttle_check(const char *key, unsigned free_fails, unsigned first_s, unsigned max_s)
{
	uint64_t now, wait_ms, since;
	unsigned wait = 0, over;
	struct slot *s;

	pthread_mutex_lock(&lock);
	now = ev_now_ms(); /* under the lock: never before a last_ms another thread just wrote */
	s = find(key, 0, now);
	if (s && s->fails >= free_fails) {
		over = s->fails - free_fails;
		wait_ms = over >= 20 ? max_s * 1000ull : ((first_s * 1000ull) << over);
		if (wait_ms > max_s * 1000ull)
			wait_ms = max_s * 1000ull;
		since = now - s->last_ms;
		wait = since < wait_ms ? (unsigned)((wait_ms - since + 999) / 1000) : 0;
	}
	pthread_mutex_unlock(&lock);
	return wait;
}

void throttle_fail(const char *key)
{
	uint64_t now;
	struct slot *s;

	pthread_mutex_lock(&lock);
	now = ev_now_ms();
	s = find(key, 1, now);
	s->fails++;
	s->last_ms = now;
	pthread_mutex_unlock(&lock);
}

void throttle_forgive(const char *key)
{
	struct slot *s;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())) && s->fails)
		s->fails--;
	pthread_mutex_unlock(&lock);
}

void throttle_reset(const char *key)
{
	struct slot *s;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())))
		s->last_ms = 0;
	pthread_mutex_unlock(&lock);
}

void throttle_remember(const char *key)
{
	uint64_t now;
	struct slot *s;

	pthread_mutex_lock(&lock);
	now = ev_now_ms();
	s = find(key, 1, now);
	s->fails = 0;
	s->last_ms = now;
	s->keep_s = THROTTLE_KNOWN_S;
	pthread_mutex_unlock(&lock);
}

int throttle_known(const char *key)
{
	struct slot *s;
	int known;

	pthread_mutex_lock(&lock);
	known = (s = find(key, 0, ev_now_ms())) && s->keep_s == THROTTLE_KNOWN_S;
	pthread_mutex_unlock(&lock);
	return known;
}

void throttle_source(const char *addr, char *out, size_t size)
{
	struct net_ip ip;

	if (net_ip_parse(addr, &ip) == 0 && !net_ip_is4(&ip)) {
		char s[NET_IP_STR_MAX];
		memset(ip.a + 8, 0, 8);
		net_ip_str(&ip, s);
		snprintf(out, size, "%s/64", s);
		return;
	}
	snprintf(out, size, "%s", addr);
}
