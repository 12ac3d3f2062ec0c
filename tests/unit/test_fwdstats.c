/* test_fwdstats.c - a client's quota as the forwarder's workers take it for reads: a read under
 * way on one worker never makes the client look used up to another, and what it did not read
 * goes back. */
#include "testlib.h"

#include "../../forwarder/stats.h"
#include <jansson.h>
#include <stdlib.h>

#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static void setup(struct fwd_stats *s, struct client_stat **cs, long long limit)
{
	struct net_ip ip;

	assert_int_equal(stats_init(s), 0);
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	stats_quota_set(s, &ip, limit, 0, 0, 0);
	assert_int_equal(stats_client_open(s, &ip, 1, 0, 0, 1000, cs), 0);
	assert_non_null(*cs);
}

static void test_reads_under_way(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs, *other;
	struct net_ip ip;
	size_t h1, h2;

	(void)state;
	setup(&s, &cs, 1000);
	/* worker 1 takes most of it for a read, worker 2 the rest: neither sees the client used up */
	assert_int_equal(stats_quota_take(cs, 600, &h1), 600);
	assert_int_equal(h1, 600);
	assert_int_equal(stats_quota_left(cs), 1000);
	assert_int_equal(stats_quota_take(cs, 600, &h2), 400); /* no byte twice: only what is left */
	assert_int_equal(h2, 400);
	assert_int_equal(stats_quota_left(cs), 1000);
	/* a new connection of the client is not refused for a read under way */
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &other), 0);
	assert_ptr_equal(other, cs);
	/* worker 1 read nothing (EAGAIN), worker 2 read 300 of its 400 */
	stats_quota_done(cs, h1, 600);
	assert_int_equal(stats_quota_left(cs), 1000); /* worker 2 still holds its 400 */
	stats_quota_done(cs, h2, 100);
	assert_int_equal(stats_quota_left(cs), 700);
	/* used up: a read gets nothing, holds nothing, and new connections are refused */
	assert_int_equal(stats_quota_take(cs, 700, &h1), 700);
	stats_quota_done(cs, h1, 0);
	assert_int_equal(stats_quota_left(cs), 0);
	assert_int_equal(stats_quota_take(cs, 100, &h2), 0);
	assert_int_equal(h2, 0);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &other), CLOSE_QUOTA);
	assert_null(other);
	/* bytes read but never delivered come back */
	stats_quota_give(cs, 50);
	assert_int_equal(stats_quota_left(cs), 50);
	/* bytes read without a take (the proxy's, with its reply) are charged even past the quota */
	stats_quota_charge(cs, 80);
	assert_int_equal(stats_quota_left(cs), -30);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &other), CLOSE_QUOTA);
	stats_quota_give(cs, 30);
	assert_int_equal(stats_quota_left(cs), 0);
	stats_fini(&s);
}

static void test_reload_during_a_read(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs;
	struct net_ip ip;
	size_t h;

	(void)state;
	setup(&s, &cs, 1000);
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	assert_int_equal(stats_quota_take(cs, 400, &h), 400);
	/* a reload sets the quota again while the read is under way: what it holds is not counted twice */
	stats_quota_set(&s, &ip, 1000, 0, 0, 0);
	assert_int_equal(stats_quota_left(cs), 1000);
	stats_quota_done(cs, h, 400); /* it read nothing */
	assert_int_equal(stats_quota_left(cs), 1000);
	/* the quota taken off: a read takes what it wants and holds nothing */
	stats_quota_set(&s, &ip, 0, 0, 0, 0);
	assert_int_equal(stats_quota_take(cs, 5000, &h), 5000);
	assert_int_equal(h, 0);
	stats_quota_done(cs, h, 5000);
	assert_true(stats_quota_left(cs) == LLONG_MAX);
	stats_fini(&s);
}

/* Two workers read and read nothing (EAGAIN) over and over, a third looks, a fourth reloads, all
 * at once: the client, whose quota nobody uses, is never seen with less than all of it (used up
 * least of all), and ends with all of it. */
struct race {
	struct fwd_stats *s;
	struct client_stat *cs;
	struct net_ip ip;
	atomic_int stop, seen_other;
	atomic_long reads, looks, reloads; /* each thread's turns: the race must have been run */
};

static void *reader(void *arg)
{
	struct race *r = arg;
	size_t held;

	while (!atomic_load(&r->stop)) {
		size_t got = stats_quota_take(r->cs, 256 * 1024, &held);
		stats_quota_done(r->cs, held, got);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

static void *looker(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		if (stats_quota_left(r->cs) != 300000)
			atomic_store(&r->seen_other, 1);
		atomic_fetch_add(&r->looks, 1);
	}
	return NULL;
}

static void *reloader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		stats_quota_set(r->s, &r->ip, 300000, 0, 0, 0);
		atomic_fetch_add(&r->reloads, 1);
	}
	return NULL;
}

static void test_workers_at_once(void **state)
{
	struct fwd_stats s = {0};
	struct race r = {.s = &s};
	pthread_t t[4];
	size_t held;

	(void)state;
	setup(&s, &r.cs, 300000);
	assert_int_equal(net_ip_parse("192.168.2.10", &r.ip), 0);
	assert_int_equal(pthread_create(&t[0], NULL, reader, &r), 0);
	assert_int_equal(pthread_create(&t[1], NULL, reader, &r), 0);
	assert_int_equal(pthread_create(&t[2], NULL, looker, &r), 0);
	assert_int_equal(pthread_create(&t[3], NULL, reloader, &r), 0);
	/* all four at once for 300 ms at least, and until each has had its turns (10 s at most) */
	for (int ms = 0; ms < 10000 && (ms < 300 || atomic_load(&r.reads) < 50000 || atomic_load(&r.looks) < 20000 ||
					atomic_load(&r.reloads) < 2000);
	     ms += 10)
		usleep(10000);
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(atomic_load(&r.reads) >= 50000 && atomic_load(&r.looks) >= 20000 &&
		    atomic_load(&r.reloads) >= 2000);
	assert_int_equal(atomic_load(&r.seen_other), 0); /* nobody ever saw it other than whole */
	assert_int_equal(stats_quota_left(r.cs), 300000);
	assert_int_equal(stats_quota_take(r.cs, 400000, &held), 300000); /* all of it, and no more */
	stats_fini(&s);
}

/* The calls to calloc and malloc of stats.c and of this file go through these (-Wl,--wrap, the
 * Makefile): fail_alloc > 0 makes the fail_alloc-th from now return NULL. */
void *__real_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
static int fail_alloc;

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_alloc > 0 && --fail_alloc == 0 ? NULL : __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
	return fail_alloc > 0 && --fail_alloc == 0 ? NULL : __real_malloc(size);
}

/* Clients come and go: counters whose address is mapped no more and hold nothing open are given
 * back at a reload. One still mapped, or with a connection open, keeps its counters, at the same
 * address however much the index grew and shrank meanwhile (a connection holds a pointer). */
static struct net_ip nth(unsigned i)
{
	char buf[32];
	struct net_ip ip;

	snprintf(buf, sizeof(buf), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	assert_int_equal(net_ip_parse(buf, &ip), 0);
	return ip;
}

static int64_t mapped_only_7(void *arg, const struct net_ip *ip)
{
	struct net_ip seven = nth(7);

	(void)arg;
	return memcmp(ip, &seven, sizeof(seven)) == 0 ? 1 : 0;
}

static void test_slots_given_back(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs, *c7 = NULL, *c9 = NULL;
	struct net_ip ip;
	const unsigned n = 20000; /* more than the 16,384 of a fixed table before */

	(void)state;
	assert_int_equal(stats_init(&s), 0);
	assert_int_equal(s.clients_cap, CLIENT_INDEX_FIRST);
	for (unsigned i = 0; i < n; i++) {
		ip = nth(i);
		assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &cs), 0);
		assert_non_null(cs); /* every one counted */
		if (i == 7)
			c7 = cs;
		if (i == 9) {
			c9 = cs; /* still open */
			continue;
		}
		stats_client_closed(&s, cs, 0);
	}
	assert_int_equal(s.clients_n, n);
	assert_true(s.clients_cap >= 2 * n && s.clients_cap <= 8 * n); /* grown, at most half in use */
	for (unsigned i = 0; i < n; i++) { /* each found again: the same counters, not new ones */
		ip = nth(i);
		assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &cs), 0);
		assert_int_equal(cs->connections, 2);
		if (i == 7)
			assert_ptr_equal(cs, c7); /* where it was before the index grew */
		stats_client_closed(&s, cs, 0);
	}
	assert_int_equal(s.clients_n, n);
	stats_clients_rebind(&s, mapped_only_7, NULL);
	assert_int_equal(s.clients_n, 2);		     /* 7 mapped, 9 open: the rest given back */
	assert_int_equal(s.clients_cap, CLIENT_INDEX_FIRST); /* and the index back to its first size */
	ip = nth(7);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &cs), 0);
	assert_ptr_equal(cs, c7); /* mapped: its counters and counts kept */
	assert_int_equal(cs->connections, 3);
	ip = nth(9);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &cs), 0);
	assert_ptr_equal(cs, c9); /* a connection open: kept */
	assert_int_equal(cs->active, 2);
	ip = nth(100);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &cs), 0);
	assert_int_equal(cs->connections, 1); /* given back: a new client's counts start at nothing */
	stats_fini(&s);
}

/* The stats answer as the control socket gives it (to free()). */
static char *answer(struct fwd_stats *s)
{
	struct stats_header h = {.workers = 1};
	size_t len = 0;
	char *text = NULL;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	stats_write(s, &h, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* Counters that a UDP flow or a quota read under way holds are not given back; a UDP flow counted
 * closed that was never counted open does not wrap the count; the stats answer lists every client,
 * once, with its counts. */
static void test_held_and_listed(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cq, *cs;
	struct net_ip u = nth(1), q = nth(2), x;
	size_t held;
	char *text;
	json_t *doc, *clients;

	(void)state;
	assert_int_equal(stats_init(&s), 0);
	stats_client_udp(&s, &u, 1, 3, 4, 300, 400, 0, 1); /* one flow open */
	stats_quota_set(&s, &q, 1000, 0, 0, 0);
	assert_int_equal(stats_client_open(&s, &q, 1, 0, 0, 1000, &cq), 0);
	assert_int_equal(stats_quota_take(cq, 100, &held), 100); /* a read under way */
	stats_client_closed(&s, cq, 0);
	stats_clients_rebind(&s, mapped_only_7, NULL);
	assert_int_equal(s.clients_n, 2); /* neither mapped, both held */
	stats_quota_done(cq, held, 0);
	stats_client_udp(&s, &u, 1, 0, 0, 0, 0, 0, -1);
	stats_clients_rebind(&s, mapped_only_7, NULL);
	assert_int_equal(s.clients_n, 0);		/* nothing holds them now */
	stats_client_udp(&s, &u, 1, 0, 0, 0, 0, 0, -2); /* closes of flows it had no counters for */
	assert_int_equal(stats_client_open(&s, &u, 1, 0, 0, 1000, &cs), 0);
	assert_int_equal(cs->udp_flows, 0);
	stats_client_closed(&s, cs, 0);
	for (unsigned i = 10; i < 3000; i++) { /* the index grown twice */
		x = nth(i);
		assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
		stats_client_bytes(cs, i, 2 * i);
	}
	text = answer(&s);
	{
		json_error_t je;
		doc = json_loads(text, JSON_REJECT_DUPLICATES, &je); /* each client once */
		if (!doc)
			fprintf(stderr, "%s at %d: %.200s\n", je.text, je.position,
				text + (je.position > 50 ? je.position - 50 : 0));
	}
	assert_non_null(doc);
	assert_non_null(clients = json_object_get(doc, "clients"));
	assert_int_equal(json_object_size(clients), 2991); /* 2,990 and u, each once */
	for (unsigned i = 10; i < 3000; i++) {
		char ip[NET_IP_STR_MAX];
		json_t *c;
		x = nth(i);
		net_ip_str(&x, ip);
		assert_non_null(c = json_object_get(clients, ip));
		assert_int_equal(json_integer_value(json_object_get(c, "bytes_up")), i);
		assert_int_equal(json_integer_value(json_object_get(c, "bytes_down")), 2 * i);
		assert_int_equal(json_integer_value(json_object_get(c, "active")), 1);
	}
	json_decref(doc);
	free(text);
	stats_fini(&s);
}

/* Clients that share a home slot: one given back, another further along the same way is still
 * found at once (the index is made again without the given-back slot); past CLIENT_STATS_MAX a
 * client goes uncounted, and a connection that got no counters counts nothing down at its close */
static int64_t mapped_b(void *arg, const struct net_ip *ip)
{
	return memcmp(ip, arg, sizeof(*ip)) == 0 ? 1 : 0;
}

static void test_given_back_on_the_way(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *ca, *cb, *cc, *ce, *cs;
	struct net_ip a = nth(0), b, c, d, e, f;
	unsigned home = net_ip_hash(&a) & (CLIENT_INDEX_FIRST - 1), i, found = 0;

	(void)state;
	for (i = 1; found < 3 && i < 10000000; i++) { /* three more clients with a's home slot */
		struct net_ip x = nth(i);
		if ((net_ip_hash(&x) & (CLIENT_INDEX_FIRST - 1)) != home)
			continue;
		if (found == 0)
			b = x;
		else if (found == 1)
			c = x;
		else
			e = x;
		found++;
	}
	assert_int_equal(found, 3);
	assert_int_equal(stats_init(&s), 0);
	assert_int_equal(stats_client_open(&s, &a, 1, 0, 0, 1000, &ca), 0);
	assert_int_equal(stats_client_open(&s, &b, 1, 0, 0, 1000, &cb), 0);
	assert_int_equal(stats_client_open(&s, &e, 1, 0, 0, 1000, &ce), 0);
	assert_ptr_equal(s.clients[home], ca);
	assert_ptr_equal(s.clients[(home + 1) & (CLIENT_INDEX_FIRST - 1)], cb); /* b's way passes a's slot */
	assert_ptr_equal(s.clients[(home + 2) & (CLIENT_INDEX_FIRST - 1)], ce);
	stats_client_closed(&s, ca, 0);
	stats_client_closed(&s, cb, 0);
	stats_client_closed(&s, ce, 0);
	stats_clients_rebind(&s, mapped_b, &b); /* a and e given back; b kept */
	assert_int_equal(s.clients_n, 1);
	assert_ptr_equal(s.clients[home], cb); /* at its home now */
	assert_int_equal(stats_client_open(&s, &b, 1, 0, 0, 1000, &cs), 0);
	assert_ptr_equal(cs, cb);
	assert_int_equal(cs->connections, 2);
	assert_int_equal(stats_client_open(&s, &c, 1, 0, 0, 1000, &cc), 0);
	assert_ptr_equal(s.clients[(home + 1) & (CLIENT_INDEX_FIRST - 1)], cc);
	assert_int_equal(cc->connections, 1);
	stats_client_closed(&s, cs, 0);
	stats_client_closed(&s, cc, 0);
	stats_clients_rebind(&s, mapped_only_7, NULL); /* neither mapped: both go */
	assert_int_equal(s.clients_n, 0);
	for (i = 0; i < s.clients_cap; i++)
		assert_null(s.clients[i]);
	/* CLIENT_STATS_MAX clients: no counters for d, and its close makes none */
	for (i = 0; i < CLIENT_STATS_MAX; i++) {
		struct net_ip x = nth(100000 + i);
		assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
		assert_non_null(cs);
		stats_client_closed(&s, cs, 0);
	}
	d = nth(50000);
	assert_int_equal(stats_client_open(&s, &d, 1, 0, 0, 1000, &cs), 0);
	assert_null(cs);
	stats_client_closed(&s, cs, 0);
	f = nth(100000 + 5); /* one that has counters keeps them */
	assert_int_equal(stats_client_open(&s, &f, 1, 0, 0, 1000, &cs), 0);
	assert_non_null(cs);
	assert_int_equal(cs->connections, 2);
	stats_client_closed(&s, cs, 0);
	assert_int_equal(s.clients_n, CLIENT_STATS_MAX);
	stats_clients_rebind(&s, mapped_only_7, NULL); /* room again */
	assert_int_equal(s.clients_n, 0);
	assert_int_equal(stats_client_open(&s, &d, 1, 0, 0, 1000, &cs), 0);
	assert_non_null(cs);
	assert_int_equal(cs->active, 1);
	stats_fini(&s);
}

/* Out of memory: a reload that cannot make the index again gives nothing back (and frees nothing:
 * the counters are still found), the next one does; a client whose index cannot grow goes
 * uncounted, the next one is counted; the stats answer without memory for its copy is the same
 * text; the index shrinks by what a reload gave back. */
static int64_t mapped_below_1000(void *arg, const struct net_ip *ip)
{
	struct net_ip first = nth(0);

	(void)arg; /* nth(i) for i < 1000: 10.0.0.0 to 10.0.3.231, IPv4 in the last 4 bytes */
	return memcmp(ip, &first, 12) == 0 && ip->a[12] == 10 && ip->a[13] == 0 && (ip->a[14] << 8 | ip->a[15]) < 1000;
}

static void test_out_of_memory(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs, *c3 = NULL;
	struct net_ip x;
	char *a, *b;
	unsigned i;

	(void)state;
	assert_int_equal(stats_init(&s), 0);
	for (i = 0; i < CLIENT_INDEX_FIRST / 2; i++) { /* the index as full as it may be */
		x = nth(i);
		assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
		if (i == 3)
			c3 = cs;
		stats_client_closed(&s, cs, 0);
	}
	assert_int_equal(s.clients_cap, CLIENT_INDEX_FIRST);
	x = nth(i);
	fail_alloc = 1; /* the bigger index */
	assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
	assert_null(cs);
	assert_int_equal(s.clients_cap, CLIENT_INDEX_FIRST);
	fail_alloc = 2; /* the counters, once the index grew */
	assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
	assert_null(cs);
	assert_int_equal(s.clients_cap, 4 * CLIENT_INDEX_FIRST);
	assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
	assert_non_null(cs);
	stats_client_closed(&s, cs, 0);
	assert_int_equal(s.clients_n, CLIENT_INDEX_FIRST / 2 + 1);
	a = answer(&s);
	fail_alloc = 1; /* the copy: written under the lock */
	b = answer(&s);
	assert_int_equal(fail_alloc, 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	fail_alloc = 1; /* the index made again at the reload */
	stats_clients_rebind(&s, mapped_only_7, NULL);
	assert_int_equal(s.clients_n, CLIENT_INDEX_FIRST / 2 + 1); /* nothing given back */
	x = nth(3);
	assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
	assert_ptr_equal(cs, c3); /* not freed, still found */
	assert_int_equal(cs->connections, 2);
	assert_int_equal(cs->given_back, 0); /* and not left to be freed at another time */
	stats_client_closed(&s, cs, 0);
	stats_clients_rebind(&s, mapped_only_7, NULL);
	assert_int_equal(s.clients_n, 1); /* now */
	assert_int_equal(s.clients_cap, CLIENT_INDEX_FIRST);
	for (i = 0; i < 20000; i++) { /* a shrink to a size between */
		x = nth(i);
		assert_int_equal(stats_client_open(&s, &x, 1, 0, 0, 1000, &cs), 0);
		stats_client_closed(&s, cs, 0);
	}
	assert_int_equal(s.clients_cap, 65536);
	stats_clients_rebind(&s, mapped_below_1000, NULL);
	assert_int_equal(s.clients_n, 1000);
	assert_int_equal(s.clients_cap, 4096); /* a quarter of it would hold 1,001; of 2,048 not */
	stats_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_under_way),	  cmocka_unit_test(test_reload_during_a_read),
	    cmocka_unit_test(test_workers_at_once),	  cmocka_unit_test(test_slots_given_back),
	    cmocka_unit_test(test_given_back_on_the_way), cmocka_unit_test(test_held_and_listed),
	    cmocka_unit_test(test_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
