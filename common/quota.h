/* quota.h - when a client's quota period began (issue 19): day (midnight), week (Monday,
 * midnight) or month (the 1st, midnight) in a time zone (the setting quota_timezone, an IANA
 * name such as Europe/Berlin; "" or an unknown one: UTC). */
#ifndef PGW_QUOTA_H
#define PGW_QUOTA_H

#include <stdint.h>

/* "day", "week" or "month"; anything else is taken as month. */
int64_t quota_period_start(int64_t now, const char *period, const char *tz);
/* A time zone name this machine knows ("UTC", or a file under /usr/share/zoneinfo). 1 or 0. */
int quota_tz_valid(const char *tz);

#endif
