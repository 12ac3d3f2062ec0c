/* proxyuri.c - see proxyuri.h. */
#include "proxyuri.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* %XX decoded in place; -1 for a bad escape or an escaped NUL. */
static int pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
			return -1;
		char hex[3] = {s[1], s[2], 0};
		long v = strtol(hex, NULL, 16);
		if (v == 0)
			return -1;
		*o++ = (char)v;
		s += 2;
	}
	*o = 0;
	return 0;
}

static int parse(const char *line, char buf[PROXY_URI_MAX + 1], struct proxy_uri *out, char *err, size_t errlen)
{
	char *p, *at, *host, *port, *name, *pass = NULL, *end;
	long pn;
	int bracketed;

	memset(out, 0, sizeof(*out));
	if (strlen(line) > PROXY_URI_MAX)
		return snprintf(err, errlen, "longer than %d bytes", PROXY_URI_MAX), -1;
	snprintf(buf, PROXY_URI_MAX + 1, "%s", line);
	if (strncmp(buf, "socks5://", 9) == 0)
		snprintf(out->type, sizeof(out->type), "socks5"), p = buf + 9;
	else if (strncmp(buf, "socks5h://", 10) == 0)
		snprintf(out->type, sizeof(out->type), "socks5"), p = buf + 10;
	else if (strncmp(buf, "http://", 7) == 0)
		snprintf(out->type, sizeof(out->type), "http"), p = buf + 7;
	else
		return snprintf(err, errlen, "not socks5://, socks5h:// or http://host:port"), -1;
	if ((name = strchr(p, '#'))) {
		*name++ = 0;
		if (strchr(name, '@')) /* a '#' in the password, unescaped */
			return snprintf(err, errlen, "a '#' before the '@': escape it in the password as %%23"), -1;
	}
	if ((at = strrchr(p, '@'))) {
		*at = 0;
		if ((pass = strchr(p, ':')))
			*pass++ = 0;
		if (pct_decode(p) < 0 || (pass && pct_decode(pass) < 0))
			return snprintf(err, errlen, "a bad %%-escape in the user or password"), -1;
		snprintf(out->user, sizeof(out->user), "%s", p);
		out->has_user = 1;
		if (pass) {
			snprintf(out->pass, sizeof(out->pass), "%s", pass);
			out->has_pass = 1;
		}
		p = at + 1;
	}
	bracketed = *p == '[';
	if (bracketed) { /* [v6]:port */
		host = p + 1;
		if (!(end = strchr(host, ']')) || end[1] != ':')
			return snprintf(err, errlen, "an IPv6 host is [address]:port"), -1;
		*end = 0;
		port = end + 2;
	} else {
		host = p;
		if (!(port = strrchr(p, ':')))
			return snprintf(err, errlen, "no port (host:port)"), -1;
		*port++ = 0;
	}
	if (!*host || strlen(host) >= sizeof(out->host))
		return snprintf(err, errlen, "no host, or a host longer than %zu characters", sizeof(out->host) - 1),
		       -1;
	for (const char *c = host; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || strchr("/@[]%#?\\", *c))
			return snprintf(err, errlen, "the host has a character no host name or address has"), -1;
	if (!bracketed && strchr(host, ':'))
		return snprintf(err, errlen, "an IPv6 host is [address]:port"), -1;
	pn = strtol(port, &end, 10);
	if (!isdigit((unsigned char)*port) || *end || pn < 1 || pn > 65535)
		return snprintf(err, errlen, "the port must be 1-65535"), -1;
	memcpy(out->host, host, strlen(host) + 1); /* fits: checked above */
	out->port = (unsigned)pn;
	if (name && *name)
		snprintf(out->name, sizeof(out->name), "%.299s", name);
	else
		snprintf(out->name, sizeof(out->name), strchr(host, ':') ? "[%s]:%ld" : "%s:%ld", host, pn);
	return 0;
}

int proxy_uri_parse(const char *line, struct proxy_uri *out, char *err, size_t errlen)
{
	char buf[PROXY_URI_MAX + 1];
	int r = parse(line, buf, out, err, errlen);

	explicit_bzero(buf, sizeof(buf)); /* the line's password, in clear */
	if (r < 0)
		explicit_bzero(out, sizeof(*out));
	return r;
}

int proxy_uri_next_line(char **pos, char **line, int *lineno)
{
	while (*pos) {
		char *ln = *pos, *next = strchr(ln, '\n');
		size_t k;

		if (next)
			*next++ = '\0';
		*pos = next;
		++*lineno;
		k = strlen(ln);
		while (k && (ln[k - 1] == '\r' || ln[k - 1] == ' ' || ln[k - 1] == '\t'))
			ln[--k] = '\0';
		while (*ln == ' ' || *ln == '\t')
			ln++;
		if (*ln && *ln != '#') {
			*line = ln;
			return 1;
		}
	}
	return 0;
}
