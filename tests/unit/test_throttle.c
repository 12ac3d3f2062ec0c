/* test_throttle.c - login throttling: free failures, then a doubling wait per key; keys apart;
 * a success forgets; IPv6 sources by /64; a flood of keys stays bounded and frees neither a
 * user's count across sources, a wrong-current-password count nor a remembered source; each
 * store forgets when it says. */
#include "testlib.h"

#include "../../api/throttle.h"

#include "evloop.h"

#include <pthread.h>
#include <stdint.h>

/* The clock the throttle reads (evloop's, replaced here): forgetting is shown by moving it. */
static uint64_t now_ms = 1000000000;
uint64_t ev_now_ms(void)
{
	return now_ms;
}

/* Whether key has a count at all (a wait far longer than any a count can have served). */
static int counted(const char *key)
{
	return throttle_check(key, 0, 1u << 20, 1u << 20) > 0;
}

/* Its failures: a key waits exactly when it has at least the free ones, and with a first wait
 * of 12 days it is still waiting whatever the tests did to the clock since. (A counter-table key
 * may share its counter with another test's key: compare before and after, not with a number.) */
static unsigned fails_of(const char *key)
{
	unsigned n = 0;

	while (n < 1000000 && throttle_check(key, n + 1, 1u << 20, 1u << 20) > 0)
		n++;
	return n;
}

/* A key of prefix with no count yet (the counter table's keys may share a counter with an
 * earlier test's name: one that does not). */
static const char *fresh_key(const char *prefix, char *key, size_t size)
{
	for (int i = 0;; i++) {
		snprintf(key, size, "%s%d", prefix, i);
		if (!counted(key))
			return key;
	}
}

static void test_backoff_and_reset(void **state)
{
	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++) {
		assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
		throttle_fail("u:alice@10.0.0.1");
	}
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 1); /* the first wait: 1 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 2); /* then 2 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 4);
	for (int i = 0; i < 20; i++)
		throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 THROTTLE_MAX_WAIT_S); /* capped */
	/* the same user from elsewhere is not locked out by what happened at 10.0.0.1 */
	assert_int_equal(throttle_check("u:alice@10.0.0.2", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
	throttle_reset("u:alice@10.0.0.1"); /* a good login */
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
}

static void test_sources(void **state)
{
	char s[80];

	(void)state;
	throttle_source("192.168.2.10", s, sizeof(s));
	assert_string_equal(s, "192.168.2.10");
	throttle_source("2001:db8:1:2:aaaa:bbbb:cccc:dddd", s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64"); /* one host may use its whole /64 */
	throttle_source("2001:db8:1:2::1", s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64");
}

/* fail each of n keys (PREFIX and its number) `fails` times */
static void fill(const char *prefix, int n, int fails)
{
	char key[40];

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%d", prefix, i);
		for (int k = 0; k < fails; k++)
			throttle_fail(key);
	}
}

/* an attempt on admin's password from one source: its three counts, as auth.c keeps them */
static void admin_attempt(void)
{
	throttle_fail("u:admin@10.1.1.1");
	throttle_fail("a:10.1.1.1");
	throttle_fail("g:admin");
}

/* The table is bounded (4,096 slots, least recently used reused): a flood of keys costs no
 * crash, and whatever fills it, an attempt's own new keys never push one another out (they did
 * under a policy that reused the fewest failures first), nor do a login's (reset, undo,
 * remember) take the counts' room for good (they did under a cap on remembered sources that a
 * free slot skipped). */
static void test_many_keys(void **state)
{
	char key[40];

	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++)
		throttle_fail("u:mallory@10.9.9.9");
	assert_true(throttle_check("u:mallory@10.9.9.9", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
	for (int i = 0; i < 100000; i++) { /* a flood of keys, far more than the slots */
		snprintf(key, sizeof(key), "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		throttle_fail(key);
	}
	assert_true(throttle_check(key, 0, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0); /* the newest counted */
	/* the known limit: 4,096 newer keys pushed the oldest count out */
	assert_int_equal(throttle_check("u:mallory@10.9.9.9", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
	assert_int_equal(throttle_check("a:never-seen", 1, 1, THROTTLE_MAX_WAIT_S), 0);
	/* every slot held by a key of two failures: admin's counts grow */
	fill("f2:", 4096, 2);
	for (int i = 0; i < 100; i++)
		admin_attempt();
	assert_true(throttle_check("g:admin", THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_true(throttle_check("u:admin@10.1.1.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
	/* every slot held by a count of five: the same */
	fill("f5:", 4096, THROTTLE_USER_FAILS);
	for (int i = 0; i < 30; i++)
		admin_attempt();
	assert_true(throttle_check("g:admin", THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_true(throttle_check("a:10.1.1.1", THROTTLE_ADDR_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
	/* 4,096 good logins from new sources, as auth.c does them (an attempt counted under u, a and
	 * g first; then reset u, undo a and g, remember k), then admin's attempts: they are counted */
	char g[48];
	fresh_key("g:user", g, sizeof(g)); /* (a name whose counter no earlier name holds) */
	for (int i = 0; i < 4096; i++) {
		char u[48], a[32], k[48];
		struct throttle_rule rules[3] = {THROTTLE_RULE(u, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
						 THROTTLE_RULE(a, THROTTLE_ADDR_FAILS, 1, THROTTLE_MAX_WAIT_S),
						 THROTTLE_RULE(g, THROTTLE_ANY_FAILS, 1, THROTTLE_MAX_WAIT_S)};
		snprintf(u, sizeof(u), "u:user@10.2.%d.%d", i >> 8, i & 255);
		snprintf(a, sizeof(a), "a:10.2.%d.%d", i >> 8, i & 255);
		snprintf(k, sizeof(k), "k:user@10.2.%d.%d", i >> 8, i & 255);
		assert_int_equal(throttle_attempt(rules, 3), 0);
		throttle_reset(u), throttle_undo(rules + 1, 2);
		throttle_remember(k);
	}
	assert_true(throttle_known("k:user@10.2.15.255"));
	for (int i = 0; i < 30; i++)
		admin_attempt();
	assert_true(throttle_check("g:admin", THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_true(throttle_check("u:admin@10.1.1.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
}

/* The counts across sources ("g:") have a table of their own: a flood of other keys, and of other
 * "g:" names, leaves a name's count held, whoever it is; a name that never failed has none. */
static void test_user_counts_apart(void **state)
{
	char key[40];
	int held = 0;

	(void)state;
	for (int i = 0; i < THROTTLE_ANY_FAILS + 1; i++)
		throttle_fail("g:alice"), throttle_fail("g:nobody-has-this-name");
	for (int i = 0; i < 20000; i++) { /* other keys, far more than their slots */
		snprintf(key, sizeof(key), "u:n%d@10.4.%d.%d", i, (i >> 8) & 255, i & 255);
		throttle_fail(key);
	}
	for (int i = 0; i < 2000; i++) { /* and 2,000 other names' counts of one failure */
		snprintf(key, sizeof(key), "g:n%d", i);
		throttle_fail(key);
	}
	assert_true(throttle_check("g:alice", THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_true(
	    throttle_check("g:nobody-has-this-name", THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	/* 2,000 names of one failure in 65,536 counters: none held by its own, only one that shares a
	 * counter with a held name (alice's, the other's, admin's and carol's from above: 0.12
	 * expected; 4 or more about once in 120,000 runs) */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "g:n%d", i);
		held += throttle_check(key, THROTTLE_ANY_FAILS, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0;
	}
	assert_true(held <= 3);
	assert_true(throttle_check("g:n1999", 0, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
}

/* A capped key waits at most its own cap; a remembered key is known (and a failure key is not). */
static void test_cap_and_known(void **state)
{
	(void)state;
	for (int i = 0; i < THROTTLE_ANY_FAILS + 30; i++)
		throttle_fail("g:carol");
	assert_int_equal(
	    throttle_check("g:carol", THROTTLE_ANY_FAILS, THROTTLE_ANY_FIRST_WAIT_S, THROTTLE_ANY_MAX_WAIT_S),
	    THROTTLE_ANY_MAX_WAIT_S);
	assert_false(throttle_known("k:carol@10.0.0.7"));
	throttle_remember("k:carol@10.0.0.7");
	assert_true(throttle_known("k:carol@10.0.0.7"));
	assert_false(throttle_known("k:carol@10.0.0.8"));
	assert_false(throttle_known("g:carol")); /* a failure count is not a remembered source */
}

/* Remembered sources ("k:") have slots of their own that only good logins write: a flood of
 * failed logins, as auth.c makes them, forgets none; one account signing in from thousands of
 * sources holds at most 8 (her oldest makes room) and pushes nobody else's out. */
static void test_remembered_apart(void **state)
{
	char u[48], a[32], k[48];

	(void)state;
	throttle_remember("k:alice@10.0.0.1");
	for (int i = 0; i < 20000; i++) { /* failed logins from new names and sources */
		snprintf(u, sizeof(u), "u:n%d@10.5.%d.%d", i, (i >> 8) & 255, i & 255);
		snprintf(a, sizeof(a), "a:10.5.%d.%d", (i >> 8) & 255, i & 255);
		throttle_fail(u), throttle_fail(a), throttle_fail("g:victim");
	}
	assert_true(throttle_known("k:alice@10.0.0.1"));
	for (int i = 0; i < 5000; i++) { /* mallory's good logins from 5,000 sources */
		snprintf(k, sizeof(k), "k:mallory@10.6.%d.%d", i >> 8, i & 255);
		throttle_remember(k);
	}
	assert_true(throttle_known("k:alice@10.0.0.1"));
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "k:mallory@10.6.%d.%d", i >> 8, i & 255);
		assert_int_equal(throttle_known(k), i >= 5000 - 8); /* her newest 8 only */
	}
	/* a name that is a prefix of another's is another user */
	throttle_remember("k:al@10.0.0.1");
	for (int i = 0; i < 8; i++) { /* (the clock stands still: the order is the writes') */
		snprintf(k, sizeof(k), "k:alice@10.7.0.%d", i);
		throttle_remember(k);
	}
	assert_false(throttle_known("k:alice@10.0.0.1")); /* her 9th source made room: her oldest went */
	assert_true(throttle_known("k:alice@10.7.0.0"));
	assert_true(throttle_known("k:alice@10.7.0.7"));
	assert_true(throttle_known("k:al@10.0.0.1"));
	/* only "k:" keys are remembered, and a failure count is never taken for one */
	throttle_remember("u:alice@10.0.0.9");
	assert_false(throttle_known("u:alice@10.0.0.9"));
	throttle_fail("k:alice@10.0.0.9"); /* refused: had it made a slot, her oldest would have gone */
	assert_false(throttle_known("k:alice@10.0.0.9"));
	assert_true(throttle_known("k:alice@10.7.0.0"));
}

/* Wrong current passwords through a session ("p:USER_ID") have slots of their own, written only
 * through a session: a flood of failed logins frees none; a good change resets the count. A
 * counter-table key ("g:") is never reset: it would free whatever shares its counter. */
static void test_password_counts(void **state)
{
	char u[48], a[32];
	unsigned alice = fails_of("g:alice");

	(void)state;
	assert_true(alice >= THROTTLE_ANY_FAILS); /* (from test_user_counts_apart) */
	for (int i = 0; i < THROTTLE_USER_FAILS; i++)
		throttle_fail("p:17");
	assert_int_equal(fails_of("p:17"), THROTTLE_USER_FAILS);
	assert_int_equal(throttle_check("p:17", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 1);
	for (int i = 0; i < 20000; i++) { /* failed logins from new names and sources */
		snprintf(u, sizeof(u), "u:x%d@10.8.%d.%d", i, (i >> 8) & 255, i & 255);
		snprintf(a, sizeof(a), "a:10.8.%d.%d", (i >> 8) & 255, i & 255);
		throttle_fail(u), throttle_fail(a), throttle_fail("g:victim");
	}
	assert_int_equal(fails_of("p:17"), THROTTLE_USER_FAILS);
	throttle_reset("g:alice");
	assert_int_equal(fails_of("g:alice"), alice);
	throttle_reset("p:17");
	assert_int_equal(fails_of("p:17"), 0);
	assert_false(counted("p:17"));
}

/* An attempt is checked against all its rules and counted under all their keys at once, or not
 * at all; of many at the same moment, no more pass than there are free failures. */
static void *attempt_once(void *arg)
{
	struct throttle_rule rule = THROTTLE_RULE("u:race@10.9.0.1", 3, 1, THROTTLE_MAX_WAIT_S);

	(void)arg;
	return (void *)(uintptr_t)(throttle_attempt(&rule, 1) == 0);
}

static void test_attempt(void **state)
{
	struct throttle_rule rules[2] = {THROTTLE_RULE("u:bob@10.9.0.2", 1, 1, THROTTLE_MAX_WAIT_S),
					 THROTTLE_RULE("a:10.9.0.2", THROTTLE_ADDR_FAILS, 1, THROTTLE_MAX_WAIT_S)};
	pthread_t t[16];
	int passed = 0;

	(void)state;
	assert_int_equal(throttle_attempt(rules, 2), 0); /* may be made: counted under both */
	assert_int_equal(fails_of("u:bob@10.9.0.2"), 1);
	assert_int_equal(fails_of("a:10.9.0.2"), 1);
	assert_int_equal(throttle_attempt(rules, 2), 1); /* the first rule holds it: the second not counted */
	assert_int_equal(fails_of("u:bob@10.9.0.2"), 1);
	assert_int_equal(fails_of("a:10.9.0.2"), 1);
	rules[0].key = "k:bob@10.9.0.2"; /* remembered sources are never counted */
	assert_int_equal(throttle_attempt(rules, 2), THROTTLE_MAX_WAIT_S);
	assert_int_equal(fails_of("a:10.9.0.2"), 1);
	for (int i = 0; i < 16; i++)
		assert_int_equal(pthread_create(&t[i], NULL, attempt_once, NULL), 0);
	for (int i = 0; i < 16; i++) {
		void *ok;
		assert_int_equal(pthread_join(t[i], &ok), 0);
		passed += (int)(uintptr_t)ok;
	}
	assert_int_equal(passed, 3);
	assert_int_equal(fails_of("u:race@10.9.0.1"), 3);
}

/* An attempt that was no failure (a good login, a 503) is undone: a count it made is gone, one
 * it added to has one failure fewer and its wait as it was (a key past its free failures does
 * not start waiting again); where others failed since, their failures and their wait stand; two
 * attempts at once, undone in either order, leave the count as it was; an undo of an attempt
 * held back, or a second undo, takes nothing. In either store. */
static void test_undo(void **state)
{
	char keys[2][48], g[48];

	(void)state;
	fresh_key("u:eve@10.9.1.", keys[0], sizeof(keys[0]));
	fresh_key("g:eve-fresh", keys[1], sizeof(keys[1]));
	struct throttle_rule fresh[2] = {THROTTLE_RULE(keys[0], THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
					 THROTTLE_RULE(keys[1], THROTTLE_ANY_FAILS, 1, THROTTLE_MAX_WAIT_S)};
	assert_int_equal(throttle_attempt(fresh, 2), 0);
	assert_true(counted(keys[0]) && counted(keys[1]));
	throttle_undo(fresh, 2);
	assert_false(counted(keys[0]));
	assert_false(counted(keys[1]));
	fresh_key("u:frank@10.9.2.", keys[0], sizeof(keys[0]));
	fresh_key("g:frank-waits", keys[1], sizeof(keys[1]));
	for (int k = 0; k < 2; k++) {
		struct throttle_rule rule = THROTTLE_RULE(keys[k], 5, 1, THROTTLE_MAX_WAIT_S),
				     other = THROTTLE_RULE(keys[k], 5, 1, THROTTLE_MAX_WAIT_S);

		for (int i = 0; i < 5; i++)
			throttle_fail(keys[k]);
		assert_int_equal(fails_of(keys[k]), 5);
		assert_int_equal(throttle_check(keys[k], 5, 1, THROTTLE_MAX_WAIT_S), 1);
		now_ms += 1000; /* its wait served */
		assert_int_equal(throttle_attempt(&rule, 1), 0);
		assert_int_equal(fails_of(keys[k]), 6);
		throttle_undo(&rule, 1);
		assert_int_equal(fails_of(keys[k]), 5);
		assert_int_equal(throttle_check(keys[k], 5, 1, THROTTLE_MAX_WAIT_S), 0); /* no new wait */
		throttle_undo(&rule, 1);						 /* again: nothing more */
		assert_int_equal(fails_of(keys[k]), 5);
		/* two at once (the wait served: 2 s after the sixth failure, had it stood) */
		assert_int_equal(throttle_attempt(&rule, 1), 0);
		assert_int_equal(throttle_attempt(&other, 1), 2); /* held back: counted nothing */
		throttle_undo(&other, 1);
		assert_int_equal(fails_of(keys[k]), 6);
		now_ms += 2000;
		assert_int_equal(throttle_attempt(&other, 1), 0);
		assert_int_equal(fails_of(keys[k]), 7);
		throttle_undo(&rule, 1), throttle_undo(&other, 1); /* the first undone first */
		assert_int_equal(fails_of(keys[k]), 5);
		/* another's failure after the attempt: the undo takes only its own back */
		now_ms += 5000;
		assert_int_equal(throttle_attempt(&rule, 1), 0);
		throttle_fail(keys[k]);
		throttle_undo(&rule, 1);
		assert_int_equal(fails_of(keys[k]), 6);
		assert_int_equal(throttle_check(keys[k], 5, 1, THROTTLE_MAX_WAIT_S), 2); /* the other's wait */
	}
	/* the count reset ("u:") or forgotten ("g:") after the attempt, and made again by others'
	 * failures: the undo leaves theirs */
	for (int k = 0; k < 2; k++) {
		fresh_key(k ? "g:gone" : "u:gone@10.9.4.", g, sizeof(g));
		struct throttle_rule rule = THROTTLE_RULE(g, 5, 1, THROTTLE_MAX_WAIT_S);
		assert_int_equal(throttle_attempt(&rule, 1), 0);
		if (k)
			now_ms += THROTTLE_USER_FORGET_S * 1000ull;
		else
			throttle_reset(g);
		assert_false(counted(g));
		throttle_fail(g), throttle_fail(g);
		throttle_undo(&rule, 1);
		assert_int_equal(fails_of(g), 2);
	}
	/* two attempts at once, both good, within the free failures: undone in either order, the
	 * count is as it was (two failures), or free where they made it */
	for (int k = 0; k < 4; k++) {
		fresh_key(k % 2 ? "g:two-at-once" : "u:two@10.9.3.", g, sizeof(g));
		struct throttle_rule r1 = THROTTLE_RULE(g, 5, 1, THROTTLE_MAX_WAIT_S), r2 = r1;
		for (int i = 0; i < (k < 2 ? 2 : 0); i++)
			throttle_fail(g);
		assert_int_equal(throttle_attempt(&r1, 1), 0);
		assert_int_equal(throttle_attempt(&r2, 1), 0);
		assert_int_equal(fails_of(g), k < 2 ? 4 : 2);
		if (k % 2)
			throttle_undo(&r1, 1), throttle_undo(&r2, 1);
		else
			throttle_undo(&r2, 1), throttle_undo(&r1, 1);
		if (k < 2)
			assert_int_equal(fails_of(g), 2);
		else
			assert_false(counted(g));
	}
}

/* The longest user name (64 characters, up to 256 bytes) keeps its source in its keys: its
 * counts from two sources are two, and a source it signed in from is that one only. */
static void test_long_names(void **state)
{
	char name[257], k1[THROTTLE_KEY_MAX], k2[THROTTLE_KEY_MAX];

	(void)state;
	memset(name, 'x', 256);
	name[256] = 0;
	snprintf(k1, sizeof(k1), "u:%s@2001:db8:1:2::/64", name);
	snprintf(k2, sizeof(k2), "u:%s@2001:db8:1:3::/64", name);
	for (int i = 0; i < THROTTLE_USER_FAILS; i++)
		throttle_fail(k1);
	assert_true(throttle_check(k1, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
	assert_int_equal(throttle_check(k2, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
	k1[0] = k2[0] = 'k';
	throttle_remember(k1);
	assert_true(throttle_known(k1));
	assert_false(throttle_known(k2));
}

/* Each store forgets when it says: a per-source count THROTTLE_FORGET_S after its last failure,
 * a counter-table count a day after, a remembered source THROTTLE_KNOWN_S after the login. */
static void test_forgetting(void **state)
{
	(void)state;
	now_ms += 40ull * 86400 * 1000; /* what the tests before left is forgotten */
	assert_false(counted("u:alice@10.0.0.1"));
	assert_false(counted("g:alice"));
	assert_false(counted("p:17"));
	assert_false(throttle_known("k:alice@10.7.0.7"));
	throttle_fail("u:dave@10.0.0.1");
	throttle_fail("g:dave");
	throttle_fail("p:40");
	throttle_remember("k:dave@10.0.0.1");
	now_ms += (THROTTLE_FORGET_S - 1) * 1000ull;
	assert_true(counted("u:dave@10.0.0.1"));
	now_ms += 1000;
	assert_false(counted("u:dave@10.0.0.1"));
	assert_true(counted("g:dave")); /* a guesser who waits a quarter of an hour gets no fresh start */
	assert_true(counted("p:40"));
	now_ms += (THROTTLE_USER_FORGET_S - THROTTLE_FORGET_S - 1) * 1000ull;
	assert_true(counted("g:dave"));
	assert_true(counted("p:40"));
	throttle_fail("g:dave"); /* a failure starts its day again */
	now_ms += 1000;
	assert_false(counted("p:40"));
	assert_true(counted("g:dave"));
	now_ms += THROTTLE_USER_FORGET_S * 1000ull;
	assert_false(counted("g:dave"));
	assert_true(throttle_known("k:dave@10.0.0.1"));
	now_ms += (THROTTLE_KNOWN_S - THROTTLE_USER_FORGET_S * 2ull) * 1000ull - 1000; /* a second before */
	assert_true(throttle_known("k:dave@10.0.0.1"));
	now_ms += 1000;
	assert_false(throttle_known("k:dave@10.0.0.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_and_reset),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_cap_and_known),
	    cmocka_unit_test(test_user_counts_apart),
	    cmocka_unit_test(test_remembered_apart),
	    cmocka_unit_test(test_password_counts),
	    cmocka_unit_test(test_attempt),
	    cmocka_unit_test(test_undo),
	    cmocka_unit_test(test_long_names),
	    cmocka_unit_test(test_forgetting), /* last: it moves the clock 70 days */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
