/* hysteresis.h - a proxy's status from its probe results, as a pure function: fail_th failures
 * in a row make it down, succ_th successes in a row bring it back; the first result decides an
 * unknown one at once. One status type with one _str() for logs, the DB and the API. */
#ifndef HEALTHD_HYSTERESIS_H
#define HEALTHD_HYSTERESIS_H

enum health_status { HEALTH_UNKNOWN = 0, HEALTH_UP, HEALTH_DOWN };

struct hysteresis {
	enum health_status status;
	unsigned fails, succs; /* in a row */
	unsigned ups;	       /* good results in a row with it up (failover's hysteresis, 0018) */
};

const char *health_status_str(enum health_status s);
/* "unknown" | "up" | "down" -> the status; anything else is unknown. */
enum health_status health_status_parse(const char *s);
/* One probe result (ok or not): updates the counts and the status; returns 1 when the status
 * changed. A status set by hand (an exit mismatch) sets ups to 0 with it. */
int hysteresis_step(struct hysteresis *h, int ok, unsigned fail_th, unsigned succ_th);

#endif
