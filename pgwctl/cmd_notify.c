/* pgwctl notify - a manual nudge of the event path, after editing the DB by hand. */
#include "pgwctl.h"

#include "notify.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned topic;
} topics[] = {
    {"proxies", TOPIC_PROXIES},	  {"mappings", TOPIC_MAPPINGS}, {"health", TOPIC_HEALTH},
    {"settings", TOPIC_SETTINGS}, {"users", TOPIC_USERS},	{"all", ~0u},
};

int cmd_notify(struct ctl *c, int argc, char **argv)
{
	unsigned mask = 0;

	for (int i = 1; i < argc; i++) {
		size_t k;
		for (k = 0; k < sizeof(topics) / sizeof(topics[0]); k++)
			if (strcmp(argv[i], topics[k].name) == 0)
				break;
		if (k == sizeof(topics) / sizeof(topics[0])) {
			fprintf(stderr,
				"pgwctl: unknown topic '%s' (proxies, mappings, health, settings, users, all)\n",
				argv[i]);
			return CTL_USAGE;
		}
		mask |= topics[k].topic;
	}
	if (!mask) {
		fprintf(stderr, "usage: pgwctl notify TOPIC...\n");
		return CTL_USAGE;
	}
	ctl_notify(c, mask);
	return CTL_OK;
}
