/* random.h - random bytes from the kernel (getrandom) for secrets: salts, tokens, keys, nonces. */
#ifndef PGW_RANDOM_H
#define PGW_RANDOM_H

#include <stddef.h>

/* Fill buf with len random bytes: 0, or -1 with errno set, and then nothing of buf may be used
 * (never a short or predictable fill). Retries a read a signal interrupted; blocks only at boot,
 * before the kernel's pool is ready. */
int random_bytes(void *buf, size_t len);
/* n random bytes as 2n lowercase hex digits and a NUL in out (2n + 1 bytes): 0, or -1 with
 * errno set and out the empty string. */
int random_hex(char *out, size_t n);

#endif
