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

#define SLOTS	       4096
#define SIGNED_SLOTS   4096
#define KNOWN_PER_USER 8     /* remembered sources a user holds at most: one account cannot fill the table */
#define BUCKETS	       65536 /* the counter table: a power of two, indexed by 16 bits */
_Static_assert(BUCKETS <= 65536 && !(BUCKETS & (BUCKETS - 1)), "BUCKETS: a power of two up to 2^16");

struct count {
	uint64_t last_ms; /* the last failure (or remembering); 0: free */
	uint64_t written; /* when last written (a failure or a remembering), in writes: the oldest slot is
			     reused, and an attempt is undone exactly while nothing wrote after it */
	uint64_t born;	  /* when claimed, in writes: an undo touches only the count its attempt wrote */
	unsigned fails;
	unsigned keep_s; /* forgotten this long after last_ms */
};

struct slot {
	struct count c;
	char key[THROTTLE_KEY_MAX];
};

/* Where a key's count lives, by its prefix (throttle.h): */
enum store {
	STORE_SLOTS,   /* "u:", "a:" (and anything else): least recently used slots */
	STORE_SIGNED,  /* "k:", "p:": slots of their own, written only by someone who signed in */
	STORE_COUNTER, /* "g:": the keyed counter table, nothing evicts */
};

static struct slot slots[SLOTS], signed_in[SIGNED_SLOTS];
static struct count buckets[BUCKETS];
static uint64_t writes; /* count writes so far: orders them even within one millisecond */
static unsigned char bucket_key[32];
static int bucket_keyed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* "k:NAME@SOURCE": a source a user signed in from, written by good logins only */
static int remembered_key(const char *key)
{
	return strncmp(key, "k:", 2) == 0;
}

static enum store store_of(const char *key)
{
	if (strncmp(key, "g:", 2) == 0)
		return STORE_COUNTER;
	if (remembered_key(key) || strncmp(key, "p:", 2) == 0)
		return STORE_SIGNED;
	return STORE_SLOTS;
}

/* Whether key may be counted as a failure (never a remembered source's), said in the log if not. */
static int countable(const char *key)
{
	if (!remembered_key(key))
		return 1;
	log_error("throttle: 'k:' keys are not counted");
	return 0;
}

/* forgotten now: freed */
static void forget_old(struct count *c, uint64_t now)
{
	if (c->last_ms && now > c->last_ms && now - c->last_ms >= c->keep_s * 1000ull)
		c->last_ms = 0;
}

static void claim(struct count *c, uint64_t now, unsigned keep_s)
{
	c->last_ms = now;
	c->fails = 0;
	c->keep_s = keep_s;
	c->born = ++writes;
}

/* The counter of a key in the counter table: HMAC-SHA256 under a key drawn once per process, so
 * nobody outside can choose keys that share one. Call locked. */
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

/* Whether slot key a is the user whose "k:NAME@" is b[0..n) (the source has no '@'). */
static int same_user(const char *a, const char *b, size_t n)
{
	return strncmp(a, b, n) == 0 && strchr(a + n, '@') == NULL;
}

/* The key's count, or (create) one made for it: its counter, or its slot or a
 * free/forgotten/least recently used one claimed for it (for a remembered source, the user's
 * oldest once she holds KNOWN_PER_USER). Call locked. */
static struct count *find(const char *key, int create, uint64_t now)
{
	enum store st = store_of(key);
	struct slot *tab = st == STORE_SIGNED ? signed_in : slots, *victim = NULL, *hers = NULL;
	int n = st == STORE_SIGNED ? SIGNED_SLOTS : SLOTS, mine = 0;
	const char *at = strrchr(key, '@');
	size_t user_len = create && remembered_key(key) && at ? (size_t)(at - key) + 1 : 0; /* "k:NAME@" */

	if (st == STORE_COUNTER) {
		struct count *b = bucket_of(key);
		forget_old(b, now);
		if (!b->last_ms) {
			if (!create)
				return NULL;
			claim(b, now, THROTTLE_USER_FORGET_S);
		}
		if (create)
			b->written = ++writes;
		return b;
	}
	for (int i = 0; i < n; i++) {
		struct slot *s = &tab[i];
		forget_old(&s->c, now);
		if (s->c.last_ms && strcmp(s->key, key) == 0) {
			if (create)
				s->c.written = ++writes;
			return &s->c;
		}
		if (!victim || !s->c.last_ms || (victim->c.last_ms && s->c.written < victim->c.written))
			victim = s;
		if (user_len && s->c.last_ms && same_user(s->key, key, user_len)) {
			mine++;
			if (!hers || s->c.written < hers->c.written)
				hers = s;
		}
	}
	if (!create)
		return NULL;
	if (mine >= KNOWN_PER_USER)
		victim = hers;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	claim(&victim->c, now, strncmp(key, "p:", 2) == 0 ? THROTTLE_USER_FORGET_S : THROTTLE_FORGET_S);
	victim->c.written = ++writes;
	return &victim->c;
}
/* The seconds rule's key, whose count is s (NULL: none), must still wait. */
static unsigned wait_of(const struct count *s, const struct throttle_rule *rule, uint64_t now)
{
	uint64_t wait_ms, since;
	unsigned over;

	if (!s || s->fails < rule->free_fails)
		return 0;
	over = s->fails - rule->free_fails;
	wait_ms = over >= 20 ? rule->max_s * 1000ull : ((rule->first_s * 1000ull) << over);
	if (wait_ms > rule->max_s * 1000ull)
		wait_ms = rule->max_s * 1000ull;
	since = now - s->last_ms;
	return since < wait_ms ? (unsigned)((wait_ms - since + 999) / 1000) : 0;
}

/* Count a failure of key; its count. Call locked. */
static struct count *fail_locked(const char *key, uint64_t now)
{
	struct count *s = find(key, 1, now);

	s->fails++;
	s->last_ms = now;
	return s;
}

unsigned throttle_check(const char *key, unsigned free_fails, unsigned first_s, unsigned max_s)
{
	struct throttle_rule rule = THROTTLE_RULE(key, free_fails, first_s, max_s);
	unsigned wait;
	uint64_t now;

	pthread_mutex_lock(&lock);
	now = ev_now_ms(); /* read under the lock: never before a last_ms another thread just wrote */
	wait = wait_of(find(key, 0, now), &rule, now);
	pthread_mutex_unlock(&lock);
	return wait;
}

unsigned throttle_attempt(struct throttle_rule *rules, int n)
{
	unsigned wait = 0, w;
	uint64_t now;

	for (int i = 0; i < n; i++)
		if (!countable(rules[i].key))
			return THROTTLE_MAX_WAIT_S;
	pthread_mutex_lock(&lock);
	now = ev_now_ms();
	for (int i = 0; i < n; i++) {
		const struct count *s = find(rules[i].key, 0, now);

		rules[i].before_ms = s ? s->last_ms : 0;
		rules[i].written = 0; /* (nothing counted yet: nothing to undo) */
		if ((w = wait_of(s, &rules[i], now)) > wait)
			wait = w;
	}
	for (int i = 0; !wait && i < n; i++) {
		const struct count *s = fail_locked(rules[i].key, now);
		rules[i].written = s->written;
		rules[i].born = s->born;
	}
	pthread_mutex_unlock(&lock);
	return wait;
}

void throttle_undo(struct throttle_rule *rules, int n)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n; i++) {
		struct count *s = rules[i].written ? find(rules[i].key, 0, ev_now_ms()) : NULL;

		/* (none, or none left: not counted, undone already, or forgotten or reset since; or
		 * another count made for the key since: its failures are others') */
		if (s && s->fails && s->born == rules[i].born) {
			if (!--s->fails)
				s->last_ms = 0; /* no failure left: free */
			else if (s->written == rules[i].written)
				s->last_ms = rules[i].before_ms; /* nothing counted since: its wait as it was */
			/* (else others' failures since stand, and their time) */
		}
		rules[i].written = 0;
	}
	pthread_mutex_unlock(&lock);
}

void throttle_fail(const char *key)
{
	if (!countable(key)) /* remembered sources are written by good logins only */
		return;
	pthread_mutex_lock(&lock);
	fail_locked(key, ev_now_ms());
	pthread_mutex_unlock(&lock);
}

void throttle_reset(const char *key)
{
	struct count *s;

	if (store_of(key) == STORE_COUNTER) { /* it would reset whatever shares the counter */
		log_error("throttle: '%.2s' keys are not reset (undo an attempt instead)", key);
		return;
	}
	pthread_mutex_lock(&lock);
	if ((s = find(key, 0, ev_now_ms())))
		s->last_ms = 0;
	pthread_mutex_unlock(&lock);
}

void throttle_remember(const char *key)
{
	uint64_t now;
	struct count *s;

	if (!remembered_key(key)) {
		log_error("throttle: only 'k:' keys are remembered");
		return;
	}
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
	known = remembered_key(key) && (s = find(key, 0, ev_now_ms())) && s->keep_s == THROTTLE_KNOWN_S;
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
