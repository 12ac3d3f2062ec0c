/* proxyuri.h - a proxy URI as the bulk import takes it: scheme://[user[:pass]@]host:port[#name]
 * (scheme socks5, socks5h or http; user and password %-escaped; an IPv6 host in brackets).
 * Pure: a line in, the parts out, so the fuzzer (tests/fuzz/fuzz_proxyuri.c) can drive it. */
#ifndef API_PROXYURI_H
#define API_PROXYURI_H

#include <stddef.h>

/* bytes in a line: the longest proxy the API takes, its 255-byte login %-escaped (3 x 2 x 255),
 * a 253-byte host and a 64-character name, fits */
#define PROXY_URI_MAX 3071

struct proxy_uri {
	char type[8];	/* "socks5" or "http" */
	char host[256]; /* a name or an address, no brackets */
	unsigned port;	/* 1-65535 */
	char name[300]; /* after '#', or host:port ([v6]:port) */
	char user[PROXY_URI_MAX + 1], pass[PROXY_URI_MAX + 1];
	int has_user, has_pass;
};

/* 0, or -1 with the reason in err. */
int proxy_uri_parse(const char *line, struct proxy_uri *out, char *err, size_t errlen);
/* The next proxy of a list (one URI per line) from *pos in text, which it changes (a line's end
 * becomes a NUL): 1 with *line trimmed of spaces and tabs (and a CR at its end) and *lineno its
 * number (every line counted, so start it at 0), empty lines and # comments skipped; 0 at the end. */
int proxy_uri_next_line(char **pos, char **line, int *lineno);

#endif
