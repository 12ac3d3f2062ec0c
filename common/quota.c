/* quota.c - see quota.h. The C library knows time zones only through TZ, which is process state:
 * it is set, used and put back under one lock, and nothing else in pgw reads local time (every
 * log and HTTP date is UTC). */
#include "quota.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

int quota_tz_valid(const char *tz)
{
	char path[128];
	struct stat st;

	if (!tz || !*tz || strcmp(tz, "UTC") == 0)
		return 1;
	if (strlen(tz) > 64 || tz[0] == '/' || strstr(tz, ".."))
		return 0;
	for (const char *p = tz; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("/_+-", *p)))
			return 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int64_t quota_period_start(int64_t now, const char *period, const char *tz)
{
	time_t t = (time_t)now;
	struct tm tm;
	char *old, saved[128] = "";
	int had;
	int64_t r;

	pthread_mutex_lock(&tz_lock);
	old = getenv("TZ");
	had = old != NULL;
	if (had)
		snprintf(saved, sizeof(saved), "%s", old);
	setenv("TZ", quota_tz_valid(tz) && tz && *tz ? tz : "UTC", 1);
	tzset();
	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (period && strcmp(period, "day") == 0)
		;
	else if (period && strcmp(period, "week") == 0)
		tm.tm_mday -= (tm.tm_wday + 6) % 7; /* back to Monday */
	else
		tm.tm_mday = 1;
	tm.tm_isdst = -1; /* whatever holds at that midnight */
	r = (int64_t)mktime(&tm);
	if (had)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	return r;
}
