/* password.c - see password.h. Parameters follow RFC 9106's second recommended option
 * (t=3, m=64 MiB, p=1): about 0.1-0.2 s per hash on the target box. */
#include "password.h"

#include "parse.h"
#include "random.h"

#include <argon2.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define T_COST	    3
#define M_COST_KIB  (64 * 1024)
#define PARALLELISM 1
#define SALT_LEN    16
#define HASH_LEN    32

const char *password_policy_error(const char *password)
{
	size_t len = utf8_chars(password); /* characters, not bytes */

	if (len < PASSWORD_MIN_LEN)
		return "password too short (at least 8 characters)";
	if (len > PASSWORD_MAX_LEN)
		return "password too long (at most 256 characters)";
	return NULL;
}

int password_hash(const char *password, char out[PASSWORD_HASH_MAX])
{
	unsigned char salt[SALT_LEN];
	size_t len = strlen(password);

	if (len == 0 || len > PASSWORD_MAX_BYTES)
		return -EINVAL;
	if (random_bytes(salt, sizeof(salt)) < 0)
		return -EIO;
	if (argon2id_hash_encoded(T_COST, M_COST_KIB, PARALLELISM, password, len, salt, sizeof(salt), HASH_LEN, out,
				  PASSWORD_HASH_MAX) != ARGON2_OK)
		return -EIO;
	return 0;
}

int password_verify(const char *hash, const char *password)
{
	int r;

	if (strncmp(hash, "$argon2id$", 10) != 0)
		return -EINVAL;
	r = argon2id_verify(hash, password, strlen(password));
	if (r == ARGON2_OK)
		return 0;
	if (r == ARGON2_VERIFY_MISMATCH)
		return -EACCES;
	return -EINVAL;
}

int password_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *pa = a, *pb = b;
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < blen; i++)
		diff |= (unsigned char)(pb[i] ^ (i < alen ? pa[i] : 0));
	return diff == 0;
}

void *secret_grow(void *p, size_t used, size_t size)
{
	void *n = malloc(size);

	if (!n)
		return NULL;
	if (p) {
		memcpy(n, p, used);
		explicit_bzero(p, used);
		free(p);
	}
	return n;
}
