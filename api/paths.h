/* paths.h - what a request's URL and headers name: a file of the dashboard, the segments of an
 * API path, an id in it (or in X-Pgw-Org, Last-Event-ID, a query), a media type, a Host. Pure
 * (fuzz_paths): anyone on the LAN may send any URL and headers, signed in or not. */
#ifndef API_PATHS_H
#define API_PATHS_H

#include <stddef.h>
#include <stdint.h>

#define PATHS_URL_MAX 200 /* a dashboard file's URL, at most */
#define PATHS_SEGS    6	  /* segments of an API path after /api/v1/, at most */

/* The file under web_dir that url (as libmicrohttpd decoded it) names: "/" is index.html; one
 * that does not start with '/', has a component starting with '.' (no "..", no hidden files), a
 * backslash or is over PATHS_URL_MAX is none. 0 with the path in out, or -1. */
int paths_web_file(const char *web_dir, const char *url, char *out, size_t size);
/* The segments of what follows "/api/v1/" in url, split at '/', copied into buf: n
 * (1..PATHS_SEGS) with seg[0..n), or -1 (none, too many, too long for buf, or an empty one but
 * a trailing '/': one spelling per path, as the checks that read the URL itself expect, e.g.
 * which requests are gateway-wide: /api/v1//config was /config filed under an organisation). */
int paths_api_segments(const char *url, char *buf, size_t size, const char *seg[PATHS_SEGS]);
/* A positive decimal id, or -1. */
int64_t path_id(const char *s);
/* Whether the Content-Type value ct is the media type `type` (its case ignored), alone or with
 * parameters after it (";", optional whitespace first: RFC 9110 8.3.1). */
int paths_media_type(const char *ct, const char *type);
/* Whether a Host header can stand in a URL the gateway sends back (a redirect): 1-255 letters,
 * digits and ".-:[]" (a name, an address, a port). */
int paths_host_ok(const char *host);

#endif
