/* test_events.c - the SSE ring: ids, resume, heartbeat, a subscriber that fell behind, and
 * events of any size through a read buffer of any size. */
#include "testlib.h"

#include "../../api/events.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static void test_order_resume_heartbeat(void **state)
{
	struct events_cursor c = {.last = events_last_id()};
	char buf[4096];
	ssize_t n;

	(void)state;
	events_publish("health", json_pack("{s:i}", "proxy_id", 1));
	events_publish("agent", json_pack("{s:i}", "generation", 7));
	n = events_read(&c, buf, sizeof(buf), 10);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "event: health\ndata: {\"proxy_id\":1}\n\n"));
	assert_true(strstr(buf, "event: health") < strstr(buf, "event: agent"));
	assert_int_equal(c.last, events_last_id());
	n = events_read(&c, buf, sizeof(buf), 20); /* nothing new: a heartbeat after the wait */
	buf[n] = 0;
	assert_string_equal(buf, ": heartbeat\n\n");
	c.last -= 1; /* Last-Event-ID one back: the last event again */
	n = events_read(&c, buf, sizeof(buf), 10);
	buf[n] = 0;
	assert_non_null(strstr(buf, "event: agent"));
	assert_null(strstr(buf, "event: health"));
}

static void test_fell_behind_gets_reset(void **state)
{
	struct events_cursor c = {.last = events_last_id()};
	char buf[4096];
	ssize_t n;

	(void)state;
	for (int i = 0; i < EVENTS_RING + 5; i++)
		events_publish("client", json_pack("{s:i}", "n", i));
	n = events_read(&c, buf, sizeof(buf), 10);
	buf[n] = 0;
	assert_non_null(strstr(buf, "event: reset"));
	assert_int_equal(c.last, events_last_id());
}

/* An event much larger than one read (a forwarder stats event with thousands of clients)
 * arrives whole, in parts, and the next event after it. */
static void test_large_event_streams_in_parts(void **state)
{
	struct events_cursor c = {.last = events_last_id()};
	size_t big = 200000, got = 0, cap = 16384;
	char *filler = malloc(big + 1), *all = malloc(big + 4096), buf[16384 + 1];
	int reads = 0;

	(void)state;
	all[0] = 0;
	memset(filler, 'x', big);
	filler[big] = 0;
	events_publish("forwarder", json_pack("{s:s}", "pad", filler));
	events_publish("agent", json_pack("{s:i}", "after", 1));
	while (!strstr(all, "event: agent") || got == 0) {
		ssize_t n = events_read(&c, buf, cap, 10);
		assert_true(n > 0 && (size_t)n <= cap);
		assert_true(reads++ < 100);
		if (memcmp(buf, ": heartbeat", 11) == 0)
			fail_msg("a heartbeat in the middle of an event (it stalled)");
		memcpy(all + got, buf, (size_t)n);
		got += (size_t)n;
		all[got] = 0;
	}
	assert_true(reads > 10);
	assert_non_null(strstr(all, "event: forwarder\ndata: {\"pad\":\"xxxx"));
	assert_non_null(strstr(all, "\"}\n\nid: "));		/* the big one ended whole, then the next */
	assert_int_equal(strlen(strstr(all, "xxxx")) > big, 1); /* every byte of it */
	assert_int_equal(c.last, events_last_id());
	events_cursor_free(&c);
	free(filler);
	free(all);
}

struct blocked_reader {
	struct events_cursor c;
	ssize_t n;
	struct timespec done;
};

static void *read_until_shutdown(void *arg)
{
	struct blocked_reader *b = arg;
	char buf[64];

	b->n = events_read(&b->c, buf, sizeof(buf), 20000); /* nothing comes: it waits */
	clock_gettime(CLOCK_MONOTONIC, &b->done);
	return NULL;
}

/* A reader already waiting is woken by the shutdown at once (not at its 20 s timeout), and a
 * read after it ends at once too. */
static void test_shutdown_ends_readers(void **state)
{
	struct blocked_reader b = {.c = {.last = events_last_id()}};
	struct events_cursor c = {.last = events_last_id()};
	struct timespec t0;
	pthread_t t;
	char buf[64];

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, read_until_shutdown, &b), 0);
	usleep(200 * 1000); /* (long enough to be waiting; if not yet, it still sees the shutdown) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	events_shutdown();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(b.n, -1);
	/* woken, not timed out: well under the 20 s it would wait (the bound is loose on purpose) */
	assert_true(b.done.tv_sec - t0.tv_sec < 10);
	assert_int_equal(events_read(&c, buf, sizeof(buf), 1000), -1);
	events_cursor_free(&b.c);
}

/* Audiences: an organisation's events reach its subscribers and those who watch every one;
 * EVENTS_ALL_ORGS only the latter, EVENTS_ONE_ORG only the former (and those of none);
 * EVENTS_ORG_ONLY(org) only that organisation's subscribers; EVENTS_EVERYONE all. A
 * subscriber's ids skip what was not for it. */
static void test_audiences(void **state)
{
	struct events_cursor acme = {.org = 2, .last = events_last_id()}, other = {.org = 3, .last = acme.last},
			     all = {.org = -1, .last = acme.last}, none = {.org = 0, .last = acme.last};
	struct events_cursor *cs[] = {&acme, &other, &all, &none};
	/* what each cursor must see, in order: a = acme's, b = gateway-wide, c = all-orgs only,
	 * d = one-org only, e = everyone, f = acme's own share only, g = another's share only */
	const char *want[] = {"a,d,e,f", "d,e,g", "a,b,c,e", "d,e"};
	char buf[4096];

	(void)state;
	events_publish_to(2, "x", json_pack("{s:s}", "k", "a"));
	events_publish_to(EVENTS_ALL_ORGS, "x", json_pack("{s:s}", "k", "b"));
	events_publish_to(EVENTS_ALL_ORGS, "x", json_pack("{s:s}", "k", "c"));
	events_publish_to(EVENTS_ONE_ORG, "x", json_pack("{s:s}", "k", "d"));
	events_publish_to(EVENTS_EVERYONE, "x", json_pack("{s:s}", "k", "e"));
	events_publish_to(EVENTS_ORG_ONLY(2), "x", json_pack("{s:s}", "k", "f"));
	events_publish_to(EVENTS_ORG_ONLY(3), "x", json_pack("{s:s}", "k", "g"));
	for (int i = 0; i < 4; i++) {
		char got[32] = "", *p = buf;
		ssize_t n = events_read(cs[i], buf, sizeof(buf) - 1, 10);
		assert_true(n > 0);
		buf[n] = 0;
		while ((p = strstr(p, "\"k\":\""))) {
			p += 5;
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%c", got[0] ? "," : "", *p);
		}
		assert_string_equal(got, want[i]);
		assert_int_equal(cs[i]->last, events_last_id());
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_resume_heartbeat),	 cmocka_unit_test(test_fell_behind_gets_reset),
	    cmocka_unit_test(test_large_event_streams_in_parts), cmocka_unit_test(test_audiences),
	    cmocka_unit_test(test_shutdown_ends_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
