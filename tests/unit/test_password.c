/* Argon2id password hashes and the results of the constant-time comparison; audit rows. */
#include "testlib.h"

#include "audit.h"
#include "password.h"

#include <argon2.h>

static void test_hash_and_verify(void **state)
{
	char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(password_hash("correct horse battery", h1), 0);
	assert_int_equal(strncmp(h1, "$argon2id$v=19$m=65536,t=3,p=1$", 31), 0);
	assert_int_equal(password_verify(h1, "correct horse battery"), 0);
	assert_int_equal(password_verify(h1, "correct horse batterY"), -EACCES);
	assert_int_equal(password_verify(h1, ""), -EACCES);
	/* a fresh salt each time */
	assert_int_equal(password_hash("correct horse battery", h2), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(password_verify(h2, "correct horse battery"), 0);
}

static void test_malformed_hashes_refused(void **state)
{
	(void)state;
	assert_int_equal(password_verify("plaintext", "plaintext"), -EINVAL);
	/* argon2i (not id) is not accepted even when it would verify: a real argon2i hash of "x" */
	{
		char h[PASSWORD_HASH_MAX];
		assert_int_equal(argon2i_hash_encoded(1, 64, 1, "x", 1, "saltsaltsalt", 12, 32, h, sizeof(h)),
				 ARGON2_OK);
		assert_int_equal(argon2i_verify(h, "x", 1), ARGON2_OK);
		assert_int_equal(password_verify(h, "x"), -EINVAL);
	}
	assert_int_equal(password_verify("$argon2id$v=19$garbage", "x"), -EINVAL);
}

static void test_policy(void **state)
{
	char big[PASSWORD_MAX_BYTES + 2], h[PASSWORD_HASH_MAX];

	(void)state;
	assert_non_null(password_policy_error("short"));
	assert_null(password_policy_error("eight888"));
	memset(big, 'a', PASSWORD_MAX_LEN + 1); /* 257 characters */
	big[PASSWORD_MAX_LEN + 1] = '\0';
	assert_non_null(password_policy_error(big));
	/* lengths are characters: 256 two-byte letters (512 bytes) are a good password, hashed and
	 * verified; 7 of them (14 bytes) are too short */
	for (int i = 0; i < PASSWORD_MAX_LEN; i++)
		memcpy(big + 2 * i, "\xc3\xa4", 2);
	big[2 * PASSWORD_MAX_LEN] = '\0';
	assert_null(password_policy_error(big));
	assert_int_equal(password_hash(big, h), 0);
	assert_int_equal(password_verify(h, big), 0);
	assert_non_null(password_policy_error("\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"));
	memset(big, 'a', PASSWORD_MAX_BYTES + 1); /* more bytes than any such password has */
	big[PASSWORD_MAX_BYTES + 1] = '\0';
	assert_int_equal(password_hash(big, h), -EINVAL);
	assert_int_equal(password_hash("", h), -EINVAL);
}

/* What the comparison answers. That it takes the same time whatever the bytes is by construction
 * (every byte of the second read, no branch on the data) and is not measured here. */
static void test_ct_equal_results(void **state)
{
	(void)state;
	assert_true(password_ct_equal("token", 5, "token", 5));
	assert_false(password_ct_equal("token", 5, "tokeN", 5));
	assert_false(password_ct_equal("tok", 3, "token", 5));
	assert_false(password_ct_equal("token!", 6, "token", 5));
	assert_true(password_ct_equal("", 0, "", 0));
}

static void test_audit_record(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");
	struct audit_entry e = {.username = "admin",
				.remote_addr = "192.0.2.7",
				.action = "proxy.update",
				.object_type = "proxy",
				.object_id = "3",
				.before_json = "{\"port\":1080}",
				.after_json = "{\"port\":1081}",
				.request_id = "r-1"};

	(void)state;
	assert_int_equal(audit_record(db, &e), 0);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM audit WHERE action = 'proxy.update' AND result = 'ok' "
				    "AND json_extract(after_json, '$.port') = 1081 AND request_id = 'r-1'"),
			 1);
	e.after_json = "{broken";
	assert_int_equal(audit_record(db, &e), -EIO);
	e.after_json = NULL;
	e.action = NULL;
	assert_int_equal(audit_record(db, &e), -EIO);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM audit"), 1);
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_and_verify), cmocka_unit_test(test_malformed_hashes_refused),
	    cmocka_unit_test(test_policy),	    cmocka_unit_test(test_ct_equal_results),
	    cmocka_unit_test(test_audit_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
