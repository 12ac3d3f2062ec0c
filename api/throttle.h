/* throttle.h - login throttling: failures counted per key ("u:<user>", "a:<address>") in a
 * fixed window; over the limit, the key is refused until its window ends. In memory, per
 * process, bounded (the oldest entry is reused). */
#ifndef API_THROTTLE_H
#define API_THROTTLE_H

#define THROTTLE_WINDOW_S   300
#define THROTTLE_USER_FAILS 5
#define THROTTLE_ADDR_FAILS 20

/* 0 when allowed, else the seconds to wait (for Retry-After). */
unsigned throttle_check(const char *key, unsigned max_fails);
void throttle_fail(const char *key);
void throttle_reset(const char *key);

#endif
