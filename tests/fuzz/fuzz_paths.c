/* libFuzzer: the URL of any request to pgw-api, from anyone on the LAN before any sign-in
 * (api/paths.c). A file of the dashboard is one under the web directory, never outside it nor a
 * hidden one: its path is the directory, '/', then components none of which starts with '.'
 * (so no "..") and no backslash. An API path's segments are non-empty, hold no '/', and are
 * what the path says in order; a path with an empty segment ("//", a trailing '/' aside) has
 * none. An id is a positive number written in decimal. The same bytes as a Content-Type are a
 * media type exactly when the part before the first ';', trailing blanks cut, is that type in
 * any case; as a Host, usable exactly when 1-255 letters, digits, ".-:[]". */
#include "../../api/paths.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WEB "/usr/share/pgw/web"

/* the media type, read another way than paths_media_type does */
static int is_type(const char *ct, const char *type)
{
	size_t n = strcspn(ct, ";");

	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n != strlen(type))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)ct[i]) != type[i])
			return 0;
	return 1;
}

static int host_chars(const char *h)
{
	size_t n = 0;

	for (; h[n]; n++)
		if (!(isascii((unsigned char)h[n]) && isalnum((unsigned char)h[n])) && !strchr(".-:[]", h[n]))
			return 0;
	return n >= 1 && n <= 255;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = strndup((const char *)data, size), out[4400], buf[512], joined[600] = "";
	const char *seg[PATHS_SEGS];
	int n;
	int64_t id;

	if (!url)
		return 0;
	if (paths_web_file(WEB, url, out, sizeof(out)) == 0) {
		const char *p = out + strlen(WEB);
		assert(strncmp(out, WEB "/", strlen(WEB) + 1) == 0);
		assert(!strchr(p, '\\') && strlen(p) <= PATHS_URL_MAX + 10);
		for (const char *c = p; (c = strchr(c, '/')); c++)
			assert(c[1] != '.'); /* no component starts with '.' */
	}
	if ((n = paths_api_segments(url, buf, sizeof(buf), seg)) >= 0) {
		const char *rest = url + 8, *c;
		assert(n >= 1 && n <= PATHS_SEGS && strncmp(url, "/api/v1/", 8) == 0 && !strstr(url + 7, "//"));
		for (int i = 0; i < n; i++) {
			assert(seg[i][0] && !strchr(seg[i], '/') && seg[i] >= buf && seg[i] < buf + sizeof(buf));
			strcat(joined, "/");
			strcat(joined, seg[i]);
		}
		{ /* the path with its empty segments dropped */
			char want[600];
			size_t w = 0;
			for (c = rest; *c; c++)
				if (*c != '/' || (w && want[w - 1] != '/'))
					want[w++] = *c;
			if (w && want[w - 1] == '/')
				w--;
			want[w] = '\0';
			assert(strcmp(joined + 1, want) == 0);
		}
	}
	/* and every decimal number up to 18 digits above 0 is one */
	if (*url && strlen(url) <= 18 && strspn(url, "0123456789") == strlen(url) && strspn(url, "0") < strlen(url))
		assert(path_id(url) > 0);
	if ((id = path_id(url)) >= 0) {
		char again[24];
		snprintf(again, sizeof(again), "%lld", (long long)id);
		assert(id > 0 && strspn(url, "0123456789") == strlen(url) && strlen(url) >= strlen(again) &&
		       strcmp(url + strlen(url) - strlen(again), again) == 0);
	}
	assert(paths_media_type(url, "application/json") == is_type(url, "application/json"));
	assert(paths_media_type(url, "text/csv") == is_type(url, "text/csv"));
	assert(!paths_media_type(NULL, "text/csv"));
	assert(paths_host_ok(url) == host_chars(url));
	assert(!paths_host_ok(NULL));
	free(url);
	return 0;
}
