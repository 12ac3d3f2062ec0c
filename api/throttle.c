/* throttle.c - see throttle.h. */
#include "throttle.h"

#include "evloop.h"
#include "log.h"
#include "random.h"
#include "net.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS	4096
#define BUCKETS 65536 /* the "g:" counts: a power of two, indexed by 16 bits */
_Static_assert(BUCKETS <= 65536 && !(BUCKETS & (BUCKETS - 1)), "BUCKETS: a power of two up to 2^16");

struct count {
	uint64_t last_ms; /* the last failure (or remembering); 0: free */
	unsigned fails;
	unsigned keep_s; /* forgotten this long after last_ms */
};

struct slot {
	struct count c;
	char key[160];
};

static struct slot slots[SLOTS];
static struct count buckets[BUCKETS];
static unsigned char bucket_key[32];
static int bucket_keyed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* forgotten now: freed */
static void forget_old(struct count *c, uint64_t now)
{
	if (c->last_ms && now > c->last_ms && now - c->last_ms >= c->keep_s * 1000ull)
		c->last_ms = 0;
}

/* The bucket of a "g:" key: HMAC-SHA256 under a key drawn once per process, so nobody outside
 * can choose names that share one. Call locked. */
static struct count *bucket_of(const char *key)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!bucket_keyed) {
		if (random_bytes(bucket_key, sizeof(bucket_key)) < 0) { /* a key anyone could know: never */
			log_error("throttle: no random key for the login counts (getrandom: %s)", strerror(errno));
			abort();
		}
		bucket_keyed = 1;
	}
	memset(md, 0, sizeof(md));
	if (!HMAC(EVP_sha256(), bucket_key, sizeof(bucket_key), (const unsigned char *)key, strlen(key), md, &n))
		return &buckets[0]; /* (out of memory) one counter for all: holds back more, never less */
	return &buckets[((unsigned)md[0] << 8 | md[1]) & (BUCKETS - 1)];
}

/* The key's count, or (create) one made for it: a "g:" key's bucket, else the key's slot or a
 * free/forgotten/least recently used one claimed for it. Call locked. */
static struct count *find(const char *key, int create, uint64_t now)
{
	struct slot *victim = NULL;

	if (strncmp(key, "g:", 2) == 0) {
		struct count *b = bucket_of(key);
		forget_old(b, now);
		if (!b->last_ms) {
			if (!create)
				return NULL;
			b->last_ms = now;
			b->fails = 0;
			b->keep_s = THROTTLE_FORGET_S;
		}
		return b;
	}
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &slots[i];
		forget_old(&s->c, now);
		if (s->c.last_ms && strcmp(s->key, key) == 0)
			return &s->c;
		if (!victim || !s->c.last_ms || (victim->c.last_ms && s->c.last_ms < victim->c.last_ms))
			victim = s;
	}
	if (!create)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->c.last_ms = now;
	victim->c.fails = 0;
	victim->c.keep_s = THROTTLE_FORGET_S;
	return &victim->c;
}
unsigned throttle_check(const char *key, unsigned free_fails, unsigned first_s, unsigned max_s)
{
	uint64_t now, wait_ms, since;
	unsigned wait = 0, over;
	struct count *s;

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
	struct count *s;

	pthread_mutex_lock(&lock);
	now = ev_now_ms();
	s = find(key, 1, now);
	s->fails++;
	s->last_ms = now;
	pthread_mutex_unlock(&lock);
}

void throttle_forgive(const char *key)
{
	struct count *s;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())) && s->fails)
		s->fails--;
	pthread_mutex_unlock(&lock);
}

void throttle_reset(const char *key)
{
	struct count *s;

	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())))
		s->last_ms = 0;
	pthread_mutex_unlock(&lock);
}

void throttle_remember(const char *key)
{
	uint64_t now;
	struct count *s;

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
	struct count *s;
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
