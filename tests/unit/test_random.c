/* Random bytes for secrets (common/random.c): every byte value and every bit turns up, draws
 * differ, a 1 MiB fill is whole to its end, hex is what it says. (That a read a
 * signal interrupted is retried, and that a failure leaves nothing usable, is not shown here:
 * getrandom neither fails nor is interrupted once the kernel's pool is ready.) */
#include "testlib.h"

#include "random.h"

#define BIG (1 << 20) /* above getrandom's 256 bytes that a signal never splits, and its 32 MiB cap's share */

static void test_bytes_spread(void **state)
{
	unsigned char *a = malloc(BIG), *b = malloc(BIG);
	unsigned seen[256] = {0}, bits[8] = {0};

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	memset(a, 0, BIG);
	memset(b, 0, BIG);
	assert_int_equal(random_bytes(a, BIG), 0);
	assert_int_equal(random_bytes(b, BIG), 0);
	assert_memory_not_equal(a, b, BIG);
	for (size_t i = 0; i < BIG; i++) {
		seen[a[i]]++;
		for (int k = 0; k < 8; k++)
			bits[k] += a[i] >> k & 1;
	}
	/* 2^20 bytes: each value ~4,096 times (a value below 3,500 is ~9 standard deviations off),
	 * each bit set ~2^19 times (±1 % is ~10 standard deviations) */
	for (int v = 0; v < 256; v++)
		assert_in_range(seen[v], 3500, 4700);
	for (int k = 0; k < 8; k++)
		assert_in_range(bits[k], BIG / 2 - BIG / 200, BIG / 2 + BIG / 200);
	/* the end of a long fill is filled too (a short read would leave the zeros of memset) */
	assert_memory_not_equal(a + BIG - 64, (unsigned char[64]){0}, 64);
	free(a);
	free(b);
}

static void test_bytes_small_and_empty(void **state)
{
	unsigned char one[1] = {0}, sixteen[16] = {0}, zero[16] = {0};
	int nonzero = 0;

	(void)state;
	assert_int_equal(random_bytes(sixteen, 0), 0); /* nothing asked: nothing written */
	assert_memory_equal(sixteen, zero, 16);
	assert_int_equal(random_bytes(sixteen, sizeof(sixteen)), 0);
	assert_memory_not_equal(sixteen, zero, 16); /* 2^-128 */
	for (int i = 0; i < 64; i++) {
		assert_int_equal(random_bytes(one, 1), 0);
		nonzero += one[0] != 0;
	}
	assert_true(nonzero > 48); /* 64 draws of one byte: ~63.75 non-zero */
}

static void test_hex(void **state)
{
	char h1[65], h2[65], big[2 * 200 + 1], empty[1] = {'x'};

	(void)state;
	memset(h1, 'Z', sizeof(h1));
	assert_int_equal(random_hex(h1, 32), 0);
	assert_int_equal(strlen(h1), 64);
	assert_int_equal(strspn(h1, "0123456789abcdef"), 64);
	assert_int_equal(random_hex(h2, 32), 0);
	assert_string_not_equal(h1, h2);
	/* more than the 64 bytes it draws at a time */
	memset(big, 'Z', sizeof(big));
	assert_int_equal(random_hex(big, 200), 0);
	assert_int_equal(strlen(big), 400);
	assert_int_equal(strspn(big, "0123456789abcdef"), 400);
	assert_memory_not_equal(big, big + 200, 200);
	assert_int_equal(random_hex(empty, 0), 0);
	assert_int_equal(empty[0], '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_spread),
	    cmocka_unit_test(test_bytes_small_and_empty),
	    cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
