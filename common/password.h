/* password.h - Argon2id password hashes (PHC string format) and constant-time comparison. */
#ifndef PGW_PASSWORD_H
#define PGW_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_MAX  128
#define PASSWORD_MIN_LEN   8			  /* characters (UTF-8 code points), as the API counts them */
#define PASSWORD_MAX_LEN   256			  /* characters */
#define PASSWORD_MAX_BYTES (4 * PASSWORD_MAX_LEN) /* the longest such password in UTF-8 */

/* Hash with a fresh random salt: 0, -EINVAL (bad length) or -EIO. */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX]);
/* 0 when password matches, -EACCES when it does not, -EINVAL for a malformed hash. */
int password_verify(const char *hash, const char *password);
/* Why a new password is not acceptable, or NULL when it is. */
const char *password_policy_error(const char *password);
/* Constant time in the length of b (the secret): 1 when equal. */
int password_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* A buffer that may hold a secret, grown without leaving a copy in freed memory (realloc would):
 * the first used bytes of p (NULL: none) moved to a new one of size bytes, p wiped and freed.
 * NULL when out of memory, p then untouched. */
void *secret_grow(void *p, size_t used, size_t size);

#endif
