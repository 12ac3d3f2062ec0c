/* paths.c - see paths.h. */
#include "paths.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int paths_web_file(const char *web_dir, const char *url, char *out, size_t size)
{
	int n;

	if (url[0] != '/' || strstr(url, "/.") || strchr(url, '\\') || strlen(url) > PATHS_URL_MAX)
		return -1;
	n = snprintf(out, size, "%s%s", web_dir, strcmp(url, "/") == 0 ? "/index.html" : url);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int paths_api_segments(const char *url, char *buf, size_t size, const char *seg[PATHS_SEGS])
{
	char *save = NULL, *tok;
	int n = 0;

	if (strncmp(url, "/api/v1/", 8) != 0 || strlen(url) >= size) /* (the whole URL: a bound of old) */
		return -1;
	if (strstr(url + 7, "//")) /* an empty segment */
		return -1;
	snprintf(buf, size, "%s", url + 8);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == PATHS_SEGS)
			return -1;
		seg[n++] = tok;
	}
	return n ? n : -1;
}

int64_t path_id(const char *s)
{
	long long v = 0;

	if (!s || !*s || strlen(s) > 18)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v > 0 ? v : -1;
}

int paths_media_type(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (!ct || strncasecmp(ct, type, n) != 0)
		return 0;
	ct += n;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

int paths_host_ok(const char *host)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]";
	size_t n = host ? strlen(host) : 0;

	return n >= 1 && n <= 255 && strspn(host, ok) == n;
}
