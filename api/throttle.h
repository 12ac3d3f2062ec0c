/* throttle.h - login throttling with backoff: failures are counted per key, and past a key's
 * free failures each further attempt waits twice as long as the one before (1 s, 2 s, 4 s, ...
 * at most THROTTLE_MAX_WAIT_S). Keys are a user name together with a source ("u:NAME@SOURCE",
 * IPv6 sources by /64), so nobody elsewhere can lock a user out, and a source alone ("a:SOURCE")
 * across users. A user's failures from every source she has not signed in from before add up too
 * ("g:NAME", a wait of at most THROTTLE_ANY_MAX_WAIT_S): many sources (a host with many
 * addresses) get no more guesses than THROTTLE_ANY_FAILS between them, while the user's own
 * sources ("k:NAME@SOURCE", remembered THROTTLE_KNOWN_S after a good login) are not held up by
 * them. Forgotten THROTTLE_FORGET_S after the last failure. In memory, per process, bounded. The
 * counts across sources ("g:NAME") live in a table of their own: 65,536 counters, a name's chosen
 * by a keyed hash (HMAC-SHA256 under a key drawn per process), never reused for another key, so
 * no flood frees one, and the same for every name whether or not it exists (two names that share
 * a counter share a count: rare, and it only ever holds back more). The other keys take 4,096
 * slots, the least recently used reused: about 2,048 failed logins from new names and sources
 * (two new slots each) between two guesses free a "u:", "a:", "k:" or "p:" count (the "g:" count
 * still holds them back). Only throttle_check, throttle_fail and throttle_forgive are meant for
 * "g:" keys: a reset or a remembering would act on every name sharing the counter. Two
 * policies that favoured counts with more failures were tried and each let an attacker switch
 * throttling off (test_throttle keeps their scenarios); pinning the counts of existing users
 * told which names exist. */
#ifndef API_THROTTLE_H
#define API_THROTTLE_H

#include <stddef.h>

#define THROTTLE_FORGET_S	  900
#define THROTTLE_MAX_WAIT_S	  300
#define THROTTLE_USER_FAILS	  5  /* per user and source */
#define THROTTLE_ADDR_FAILS	  20 /* per source, any users */
#define THROTTLE_ANY_FAILS	  20 /* per user, from sources she has not signed in from */
#define THROTTLE_ANY_FIRST_WAIT_S 5
#define THROTTLE_ANY_MAX_WAIT_S	  60
#define THROTTLE_KNOWN_S	  (30 * 86400)

/* 0 when an attempt may be made now, else the seconds to wait (for Retry-After): first_s after
 * the first failure past the free ones, doubling, at most max_s. */
unsigned throttle_check(const char *key, unsigned free_fails, unsigned first_s, unsigned max_s);
/* Count an attempt as failed (before the work: an attempt that never ends counts too). */
void throttle_fail(const char *key);
/* One counted attempt turned out fine: take it back (a source's good logins never add up). */
void throttle_forgive(const char *key);
/* The attempt succeeded: forget the key. */
void throttle_reset(const char *key);
/* Remember key (a good login's "k:NAME@SOURCE") for THROTTLE_KNOWN_S; whether it is. */
void throttle_remember(const char *key);
int throttle_known(const char *key);
/* The source part of a key: the address, or its /64 for IPv6 (one host has a whole /64). */
void throttle_source(const char *addr, char *out, size_t size);

#endif
