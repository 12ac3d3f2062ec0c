/* The resolver's cache: hits per proxy endpoint only, TTLs aged on the way out, expiry, the
 * client's id and case, none for a query with a Client Subnet option, bounds by entries and
 * bytes (least recently used out first). */
#include "testlib.h"

#include "../../forwarder/dnscache.h"

/* A query for name (type A) and an answer to it with one A record of the given TTL. */
static size_t query(const char *name, uint16_t id, uint8_t *m, struct dns_query *q)
{
	int n = dns_build_query(id, name, 1, m, 512);

	assert_true(n > 0);
	assert_int_equal(dns_parse_query(m, (size_t)n, q), 0);
	return (size_t)n;
}

static size_t answer(const struct dns_query *q, const uint8_t *qm, uint32_t ttl, uint8_t *m)
{
	static const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1};
	size_t n = q->question_end;

	memcpy(m, qm, n);
	m[2] = 0x81;
	m[3] = 0x80;
	m[7] = 1;  /* one answer */
	m[11] = 0; /* no OPT */
	memcpy(m + n, rr, sizeof(rr));
	m[n + 6] = (uint8_t)(ttl >> 24);
	m[n + 7] = (uint8_t)(ttl >> 16);
	m[n + 8] = (uint8_t)(ttl >> 8);
	m[n + 9] = (uint8_t)ttl;
	return n + sizeof(rr);
}

static uint32_t ttl_of(const uint8_t *m, const struct dns_query *q)
{
	const uint8_t *p = m + q->question_end + 6;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_hit_age_expire(void **state)
{
	struct dns_cache *c = dns_cache_new(100, 1 << 20);
	struct dns_query q, q2;
	uint8_t qm[512], qm2[512], am[512], out[512];
	size_t an, n;

	(void)state;
	query("www.example.org", 1, qm, &q);
	an = answer(&q, qm, 300, am);
	assert_int_equal(dns_cache_get(c, 7, &q, qm, 1000, out, sizeof(out)), 0);
	dns_cache_put(c, 7, &q, am, an, 300, 1000);
	assert_int_equal(dns_cache_entries(c), 1);
	/* another client, another case, 100 s later: its id, its case, TTL 200 */
	query("WWW.Example.ORG", 0x4242, qm2, &q2);
	n = dns_cache_get(c, 7, &q2, qm2, 101000, out, sizeof(out));
	assert_int_equal(n, an);
	assert_memory_equal(out, "\x42\x42", 2);
	assert_memory_equal(out + 12, qm2 + 12, q2.question_end - 12);
	assert_int_equal(ttl_of(out, &q2), 200);
	/* another proxy endpoint: nothing (the same name may resolve differently by exit) */
	assert_int_equal(dns_cache_get(c, 8, &q2, qm2, 101000, out, sizeof(out)), 0);
	/* past the TTL: gone */
	assert_int_equal(dns_cache_get(c, 7, &q2, qm2, 301000, out, sizeof(out)), 0);
	assert_int_equal(dns_cache_entries(c), 0);
	/* the same name asked without EDNS0, or with DO: other answers, not this one */
	dns_cache_put(c, 7, &q, am, an, 300, 1000);
	{
		struct dns_query plain = q, dnssec = q;
		plain.edns = 0;
		dnssec.do_bit = 1;
		assert_int_equal(dns_cache_get(c, 7, &plain, qm, 2000, out, sizeof(out)), 0);
		assert_int_equal(dns_cache_get(c, 7, &dnssec, qm, 2000, out, sizeof(out)), 0);
		assert_int_equal(dns_cache_get(c, 7, &q, qm, 2000, out, sizeof(out)), an);
	}
	/* with a Client Subnet option (RFC 7871): not from the cache; its answer neither kept nor
	 * replacing the one kept */
	{
		struct dns_query ecs = q;
		ecs.uncached = 1;
		assert_int_equal(dns_cache_get(c, 7, &ecs, qm, 2000, out, sizeof(out)), 0);
		dns_cache_put(c, 7, &ecs, am, an, 0, 2000);
		dns_cache_put(c, 7, &ecs, am, an, 300, 2000);
		assert_int_equal(dns_cache_entries(c), 1);
		assert_int_equal(dns_cache_get(c, 7, &q, qm, 2000, out, sizeof(out)), an);
		dns_cache_clear(c);
		dns_cache_put(c, 7, &ecs, am, an, 300, 2000);
		assert_int_equal(dns_cache_entries(c), 0);
		dns_cache_put(c, 7, &q, am, an, 300, 1000);
	}
	/* TTL 0: not kept (and replaces what was there) */
	dns_cache_put(c, 7, &q, am, an, 0, 1000);
	assert_int_equal(dns_cache_entries(c), 0);
	dns_cache_free(c);
}

static void test_bounds(void **state)
{
	struct dns_cache *c = dns_cache_new(3, 1 << 20);
	struct dns_query q[4];
	uint8_t qm[4][512], am[512], out[512];
	char name[32];

	(void)state;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d.example.org", i);
		query(name, 1, qm[i], &q[i]);
	}
	for (int i = 0; i < 3; i++)
		dns_cache_put(c, 1, &q[i], am, answer(&q[i], qm[i], 60, am), 60, 0);
	/* n0 used again: n1 is the least recently used, and goes when n3 comes */
	assert_true(dns_cache_get(c, 1, &q[0], qm[0], 10, out, sizeof(out)) > 0);
	dns_cache_put(c, 1, &q[3], am, answer(&q[3], qm[3], 60, am), 60, 10);
	assert_int_equal(dns_cache_entries(c), 3);
	assert_int_equal(dns_cache_get(c, 1, &q[1], qm[1], 20, out, sizeof(out)), 0);
	assert_true(dns_cache_get(c, 1, &q[0], qm[0], 20, out, sizeof(out)) > 0);
	assert_true(dns_cache_get(c, 1, &q[3], qm[3], 20, out, sizeof(out)) > 0);
	dns_cache_clear(c);
	assert_int_equal(dns_cache_entries(c), 0);
	dns_cache_free(c);
	/* by bytes: room for two answers only */
	c = dns_cache_new(100, 2 * answer(&q[0], qm[0], 60, am) + 1);
	for (int i = 0; i < 4; i++)
		dns_cache_put(c, 1, &q[i], am, answer(&q[i], qm[i], 60, am), 60, 0);
	assert_int_equal(dns_cache_entries(c), 2);
	dns_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_hit_age_expire), cmocka_unit_test(test_bounds)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
