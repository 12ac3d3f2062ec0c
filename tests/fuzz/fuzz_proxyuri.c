/* libFuzzer: proxy URIs are user input (the bulk proxy import). Whatever parses has a type, a
 * host that fits, a port in range and a name; and the URI built back from the parts (user and
 * password %-escaped) parses to the same parts. The input is also read as a whole list: its
 * lines as proxy_uri_next_line gives them are non-empty, trimmed, not comments, numbered as the
 * text counts them, and each goes through the parser. */
#include "../../api/proxyuri.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 4 < cap; s++)
		n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*s);
	out[n] = 0;
}

static void list(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *pos, *ln, err[128];
	int lineno = 0, last = 0;
	struct proxy_uri u;

	if (!text || memchr(data, 0, size)) {
		free(text);
		return;
	}
	memcpy(text, data, size);
	text[size] = 0;
	for (pos = text; proxy_uri_next_line(&pos, &ln, &lineno);) {
		size_t k = strlen(ln), nl = 0;
		assert(k && ln[0] != '#' && ln[0] != ' ' && ln[0] != '\t' && !strchr(ln, '\n'));
		assert(ln[k - 1] != ' ' && ln[k - 1] != '\t' && ln[k - 1] != '\r');
		for (const uint8_t *c = data; c < data + (ln - text); c++)
			nl += *c == '\n';
		assert(lineno > last && (size_t)lineno == nl + 1);
		last = lineno;
		(void)proxy_uri_parse(ln, &u, err, sizeof(err));
	}
	assert(!pos);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[PROXY_URI_MAX + 2], again[4 * PROXY_URI_MAX + 64], u[3 * PROXY_URI_MAX + 1], p[3 * PROXY_URI_MAX + 1],
	    err[128];
	struct proxy_uri a, b;

	list(data, size);
	if (size > PROXY_URI_MAX + 1)
		return 0;
	memcpy(line, data, size);
	line[size] = 0;
	if (proxy_uri_parse(line, &a, err, sizeof(err)) < 0)
		return 0;
	assert(strcmp(a.type, "socks5") == 0 || strcmp(a.type, "http") == 0);
	assert(a.port >= 1 && a.port <= 65535 && a.host[0] && a.name[0]);
	if (strchr(a.host, '#') || strchr(a.host, '@') || strchr(a.name, '\n'))
		return 0; /* parts a URI cannot carry back unescaped: no round trip to check */
	escape(u, sizeof(u), a.user);
	escape(p, sizeof(p), a.pass);
	snprintf(again, sizeof(again), "%s://%s%s%s%s%s%s:%u#%s", a.type, a.has_user ? u : "", a.has_pass ? ":" : "",
		 a.has_pass ? p : "", a.has_user ? "@" : "", strchr(a.host, ':') ? "[" : "", a.host, a.port, a.name);
	if (strchr(a.host, ':')) { /* "[host" was written: close the bracket before the port */
		char *colon = strrchr(again, ':');
		char tail[PROXY_URI_MAX + 64];
		snprintf(tail, sizeof(tail), "]%s", colon);
		*colon = 0;
		strncat(again, tail, sizeof(again) - strlen(again) - 1);
	}
	if (strlen(again) > PROXY_URI_MAX || proxy_uri_parse(again, &b, err, sizeof(err)) < 0)
		return 0;
	assert(strcmp(a.type, b.type) == 0 && strcmp(a.host, b.host) == 0 && a.port == b.port);
	assert(strcmp(a.user, b.user) == 0 && strcmp(a.pass, b.pass) == 0 && strcmp(a.name, b.name) == 0);
	return 0;
}
