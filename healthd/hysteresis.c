/* hysteresis.c - see hysteresis.h. */
#include "hysteresis.h"

#include <string.h>

static const char *const names[] = {[HEALTH_UNKNOWN] = "unknown", [HEALTH_UP] = "up", [HEALTH_DOWN] = "down"};

const char *health_status_str(enum health_status s)
{
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

enum health_status health_status_parse(const char *s)
{
	for (unsigned i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (enum health_status)i;
	return HEALTH_UNKNOWN;
}

int hysteresis_step(struct hysteresis *h, int ok, unsigned fail_th, unsigned succ_th)
{
	enum health_status old = h->status;

	if (ok) {
		h->succs++;
		h->fails = 0;
		if (h->status != HEALTH_UP && (h->status == HEALTH_UNKNOWN || h->succs >= succ_th))
			h->status = HEALTH_UP;
	} else {
		h->fails++;
		h->succs = 0;
		if (h->status != HEALTH_DOWN && h->fails >= fail_th)
			h->status = HEALTH_DOWN;
	}
	h->ups = ok && h->status == HEALTH_UP ? h->ups + 1 : 0; /* any failure starts it over */
	return h->status != old;
}
