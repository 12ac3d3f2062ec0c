/* throttle.h - login throttling with backoff: failures are counted per key, and past a key's
 * free failures each further attempt waits twice as long as the one before (1 s, 2 s, 4 s, ...
 * at most THROTTLE_MAX_WAIT_S). A key's prefix says what it counts and where the count lives:
 *  - "u:NAME@SOURCE" a user from one source (IPv6 sources by /64), so nobody elsewhere can lock
 *    a user out, "a:SOURCE" a source across users, and "s:SOURCE" the refused SSO sign-ins begun
 *    there that were audited (api/oidc.c audit_room: only the audit is held back): 4,096 slots,
 *    the least recently used reused (about 2,048 failed logins from new names and sources
 *    between two guesses free one);
 *  - "g:NAME" a user's failures from every source she has not signed in from before (a wait of
 *    at most THROTTLE_ANY_MAX_WAIT_S: many sources, a host with many addresses, get no more
 *    guesses than THROTTLE_ANY_FAILS between them): a counter table, 65,536 counters, a name's
 *    chosen by a keyed hash (HMAC-SHA256 under a key drawn per process), never reused for another
 *    name, so no flood frees one, the same for every name whether or not it exists (two names
 *    that share a counter share a count: rare, and it only ever holds back more). Only
 *    throttle_check, throttle_attempt, throttle_fail and throttle_undo act on it (a reset
 *    would free whatever shares the counter);
 *  - "k:NAME@SOURCE" a source the user signed in from (remembered THROTTLE_KNOWN_S after a good
 *    login; her own sources are not held up by "g:"), at most 8 a user (her oldest makes room),
 *    and "p:USER_ID" wrong current passwords through a session: 4,096 slots of their own that
 *    only someone signed in writes, so failed logins never free one and one account cannot
 *    fill them.
 * "g:" and "p:" are forgotten THROTTLE_USER_FORGET_S after the last failure (the wait caps hold
 * over a day), the others THROTTLE_FORGET_S. In memory, per process, bounded. Two policies that
 * favoured counts with more failures were tried and each let an attacker switch throttling off
 * (test_throttle keeps their scenarios); pinning the counts of existing users told which names
 * exist. */
#ifndef API_THROTTLE_H
#define API_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_FORGET_S	  900
#define THROTTLE_MAX_WAIT_S	  300
#define THROTTLE_USER_FAILS	  5  /* per user and source */
#define THROTTLE_ADDR_FAILS	  20 /* per source, any users */
#define THROTTLE_SSO_AUDITED	  50 /* refused SSO sign-ins audited per source they were begun from ("s:"), */
#define THROTTLE_SSO_AUDIT_WAIT_S 60 /* then one a minute, doubling up to THROTTLE_MAX_WAIT_S */
#define THROTTLE_ANY_FAILS	  20 /* per user, from sources she has not signed in from */
#define THROTTLE_ANY_FIRST_WAIT_S 5
#define THROTTLE_ANY_MAX_WAIT_S	  60
#define THROTTLE_KNOWN_S	  (30 * 86400)
/* a key: a prefix, a user name (at most 256 bytes), '@' and a source (an address or a /64) */
#define THROTTLE_KEY_MAX       (2 + 256 + 1 + 64 + 1)
#define THROTTLE_USER_FORGET_S 86400 /* "g:", "p:": a day, so the wait caps hold over a day */

/* 0 when an attempt may be made now, else the seconds to wait (for Retry-After): first_s after
 * the first failure past the free ones, doubling, at most max_s. */
unsigned throttle_check(const char *key, unsigned free_fails, unsigned first_s, unsigned max_s);
struct throttle_rule {
	const char *key;
	unsigned free_fails, first_s, max_s; /* as throttle_check's */
	/* what throttle_attempt found and wrote, for throttle_undo */
	uint64_t before_ms, written, born;
};
#define THROTTLE_RULE(k, free, first, max)                                                                             \
	{                                                                                                              \
		.key = (k), .free_fails = (free), .first_s = (first), .max_s = (max)                                   \
	}
/* An attempt about to be made, held back by any of n rules: 0 when none holds it, and then it
 * is counted as failed under every rule's key at once (before the work: an attempt that never
 * ends counts too, and two at the same moment cannot both take the last free failure); else the
 * longest wait, and nothing counted. */
unsigned throttle_attempt(struct throttle_rule *rules, int n);
/* Attempts counted by throttle_attempt that were no failures (a good login, or one never made,
 * a 503): one failure fewer under each rule's key, and where no failure was counted under it
 * since, its wait as it was before (a source's good logins never add up, and neither they nor a
 * refused attempt start a key's wait again); a count left with none is free. Rules not counted
 * (the attempt was held back), or undone already, are passed over, and so are keys whose count
 * was reset or forgotten since (a count made for the key again holds only others' failures). */
void throttle_undo(struct throttle_rule *rules, int n);
/* Count an attempt as failed ("k:" keys are not counted: only good logins write them). */
void throttle_fail(const char *key);
/* The attempt succeeded: forget the key. */
void throttle_reset(const char *key);
/* Remember key (a good login's "k:NAME@SOURCE") for THROTTLE_KNOWN_S; whether it is. */
void throttle_remember(const char *key);
int throttle_known(const char *key);
/* The source part of a key: the address, or its /64 for IPv6 (one host has a whole /64). */
void throttle_source(const char *addr, char *out, size_t size);

#endif
