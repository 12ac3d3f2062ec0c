/* test_token.c - session tokens and API keys as pgw-api reads them (api/token.c): what it issues
 * verifies; an expired token, another key's, alg none, a second spelling of a valid one (padding,
 * a stray character), claims in another form are refused; an API key only in the form handed out. */
#include "testlib.h"

#include "../../api/token.h"

#include "../b64url.h"

#include <jwt.h>
#include <openssl/hmac.h>

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
#define CSRF "5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5"

static char *issued(int64_t sub, int64_t gen, const char *csrf, long exp)
{
	char *t = token_session_issue(key, sizeof(key) - 1, sub, gen, csrf, 1000, exp);
	assert_non_null(t);
	return t;
}

static int verify(const char *tok, time_t now, struct session_claims *c)
{
	return token_session_verify(tok, key, sizeof(key) - 1, now, c);
}

static void test_session(void **state)
{
	struct session_claims c;
	char *t = issued(42, 3, CSRF, 5000), *u;
	size_t n = strlen(t);

	(void)state;
	assert_int_equal(verify(t, 4999, &c), 0);
	assert_int_equal(c.sub, 42);
	assert_int_equal(c.gen, 3);
	assert_int_equal(c.exp, 5000);
	assert_string_equal(c.csrf, CSRF);
	assert_int_equal(verify(t, 5000, &c), -1); /* expired */
	assert_int_equal(c.sub, 0);
	assert_int_equal(token_session_verify(t, (const unsigned char *)"another", 7, 10, &c), -1);
	u = malloc(n + 3);
	snprintf(u, n + 3, "%s==", t); /* padded: the same signature spelt another way */
	assert_int_equal(verify(u, 10, &c), -1);
	snprintf(u, n + 3, "%s", t);
	u[n - 1] = u[n - 1] == 'A' ? 'B' : 'A'; /* another signature */
	assert_int_equal(verify(u, 10, &c), -1);
	snprintf(u, n + 3, "%s", t);
	u[n - 10] = '*'; /* not base64url */
	assert_int_equal(verify(u, 10, &c), -1);
	snprintf(u, n + 3, "%s", t);
	*strrchr(u, '.') = '\0'; /* unsigned */
	assert_int_equal(verify(u, 10, &c), -1);
	free(u);
	free(t);
	/* alg none, with the claims of a valid token and a signature of the right length (so that
	 * libjwt and the pin to HS256 are what refuse it) */
	assert_int_equal(
	    verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiIsImNzcmYiOiI1YzBmZmVlNTVjMGZmZWU1NWMwZmZlZTU1YzBmZmVlNT"
		   "VjMGZmZWU1NWMwZmZlZTU1YzBmZmVlNTVjMGZmZWU1IiwiZ2VuIjozLCJleHAiOjUwMDB9."
		   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		   10, &c),
	    -1);
	/* signed, but claims in another form: gen as a string (libjwt would read "1" as 0), sub
	 * with leading zeros or as a number, exp as a string */
	{
		static const char *const bad[] = {
		    "{\"sub\":\"42\",\"csrf\":\"" CSRF "\",\"gen\":\"3\",\"exp\":5000}",
		    "{\"sub\":\"042\",\"csrf\":\"" CSRF "\",\"gen\":3,\"exp\":5000}",
		    "{\"sub\":42,\"csrf\":\"" CSRF "\",\"gen\":3,\"exp\":5000}",
		    "{\"sub\":\"42\",\"csrf\":\"" CSRF "\",\"gen\":3,\"exp\":\"5000\"}",
		    "{\"sub\":\"42\",\"csrf\":\"" CSRF "\",\"gen\":-1,\"exp\":5000}",
		};
		char hand[400], *h, *pl, *sig;
		unsigned char mac[32];
		unsigned ml = 0;
		const char *hdr = "{\"alg\":\"hS256\"}",
			   *claims = "{\"sub\":\"42\",\"csrf\":\"" CSRF "\",\"gen\":3,\"exp\":5000}";

		/* made by hand, the algorithm spelt "hS256" (libjwt takes it for HS256): refused */
		h = b64url((const unsigned char *)hdr, strlen(hdr));
		pl = b64url((const unsigned char *)claims, strlen(claims));
		snprintf(hand, sizeof(hand), "%s.%s", h, pl);
		assert_non_null(
		    HMAC(EVP_sha256(), key, sizeof(key) - 1, (const unsigned char *)hand, strlen(hand), mac, &ml));
		sig = b64url(mac, 32);
		snprintf(hand + strlen(hand), sizeof(hand) - strlen(hand), ".%s", sig);
		assert_int_equal(verify(hand, 10, &c), -1);
		/* ... and spelt "HS256", the same claims pass (so it is the spelling that was refused) */
		free(h), free(sig);
		h = b64url((const unsigned char *)"{\"alg\":\"HS256\"}", 15);
		snprintf(hand, sizeof(hand), "%s.%s", h, pl);
		assert_non_null(
		    HMAC(EVP_sha256(), key, sizeof(key) - 1, (const unsigned char *)hand, strlen(hand), mac, &ml));
		sig = b64url(mac, 32);
		snprintf(hand + strlen(hand), sizeof(hand) - strlen(hand), ".%s", sig);
		assert_int_equal(verify(hand, 10, &c), 0);
		free(h), free(pl), free(sig);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			jwt_t *j = NULL;
			char *s;
			assert_int_equal(jwt_new(&j), 0);
			assert_int_equal(jwt_add_grants_json(j, bad[i]), 0);
			assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, key, sizeof(key) - 1), 0);
			assert_non_null(s = jwt_encode_str(j));
			assert_int_equal(verify(s, 10, &c), -1);
			free(s);
			jwt_free(j);
		}
	}
	t = issued(42, 3, "not hex", 5000); /* signed, but not a CSRF secret pgw-api makes */
	assert_int_equal(verify(t, 10, &c), -1);
	free(t);
	t = issued(0, 3, CSRF, 5000); /* no user 0 */
	assert_int_equal(verify(t, 10, &c), -1);
	free(t);
}

static void test_apikey(void **state)
{
	const char *secret = NULL;
	int64_t id = 0;
	char k[200];

	(void)state;
	snprintf(k, sizeof(k), "pgwk_17_%s", CSRF);
	assert_int_equal(token_apikey_split(k, &id, &secret), 1);
	assert_int_equal(id, 17);
	assert_string_equal(secret, CSRF);
	assert_int_equal(token_apikey_split("Bearer x", &id, &secret), -1);
	const char *bad[] = {"pgwk_",
			     "pgwk_17",
			     "pgwk_017_" CSRF,
			     "pgwk_+17_" CSRF,
			     "pgwk_ 17_" CSRF,
			     "pgwk_0_" CSRF,
			     "pgwk_17_" CSRF "0",
			     "pgwk_17_5C0FFEE5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5",
			     "pgwk_99999999999999999999_" CSRF};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(token_apikey_split(bad[i], &id, &secret), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session),
	    cmocka_unit_test(test_apikey),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
