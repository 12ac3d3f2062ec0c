/* log.c - see log.h. One write(2) per line so concurrent writers never interleave lines. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static struct {
	char daemon[32];
	enum log_format fmt;
	enum log_level level;
	int fd;
} g_log = {"pgw", LOG_FMT_TEXT, LOG_LVL_INFO, 2};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *daemon, enum log_format fmt, enum log_level level)
{
	snprintf(g_log.daemon, sizeof(g_log.daemon), "%s", daemon ? daemon : "pgw");
	g_log.fmt = fmt;
	g_log.level = level;
}

void log_set_fd(int fd)
{
	g_log.fd = fd;
}

int log_get_fd(void)
{
	return g_log.fd;
}

int log_enabled(enum log_level l)
{
	return l <= g_log.level;
}

const char *log_level_str(enum log_level l)
{
	return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "?";
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FMT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FMT_JSON;
	else
		return -EINVAL;
	return 0;
}

size_t log_json_escape(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	if (size == 0)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t len;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			len = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			len = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			len = 2;
		} else if (c < 0x20 || c == 0x7f) {
			len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else {
			esc[0] = (char)c;
			len = 1;
		}
		if (n + len >= size)
			break;
		memcpy(buf + n, esc, len);
		n += len;
	}
	buf[n] = '\0';
	return n;
}

static size_t append(char *line, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static size_t append(char *line, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (n >= LOG_LINE_MAX)
		return n;
	va_start(ap, fmt);
	r = vsnprintf(line + n, LOG_LINE_MAX - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		return n;
	n += (size_t)r;
	return n < LOG_LINE_MAX ? n : LOG_LINE_MAX - 1;
}

void log_emit(enum log_level l, const char *id, int errnum, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX / 2], esc[LOG_LINE_MAX / 2], line[LOG_LINE_MAX], ts[40];
	struct timespec now;
	struct tm tm;
	size_t n = 0;
	va_list ap;
	int saved = errno;

	if (!log_enabled(l))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (errnum > 0) {
		size_t m = strlen(msg);
		snprintf(msg + m, sizeof(msg) - m, ": %s", strerror(errnum));
	}

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

	n = 0;
	if (g_log.fmt == LOG_FMT_JSON) {
		log_json_escape(esc, sizeof(esc), msg);
		n = append(line, n, "{\"ts\":\"%s\",\"level\":\"%s\",\"daemon\":\"%s\"", ts, log_level_str(l),
			   g_log.daemon);
		if (id && *id) {
			char idesc[128];
			log_json_escape(idesc, sizeof(idesc), id);
			n = append(line, n, ",\"id\":\"%s\"", idesc);
		}
		n = append(line, n, ",\"msg\":\"%s\"}\n", esc);
	} else {
		/* one event, one line: a newline (or any control byte) someone put in a user name or a
		 * URL is shown escaped, never as a line of its own */
		size_t k = 0;
		for (const unsigned char *p = (const unsigned char *)msg; *p && k + 5 < sizeof(esc); p++) {
			if (*p < 0x20 || *p == 0x7f || *p == '\\') /* a \ too, so "\x0a" typed in is not a newline */
				k += (size_t)snprintf(esc + k, sizeof(esc) - k, "\\x%02x", *p);
			else
				esc[k++] = (char)*p;
		}
		esc[k] = 0;
		n = append(line, n, "%s %s %s", ts, g_log.daemon, log_level_str(l));
		if (id && *id)
			n = append(line, n, " [%s]", id);
		n = append(line, n, ": %s\n", esc);
	}
	if (n > 0 && line[n - 1] != '\n')
		line[n - 1] = '\n';
	/* One write per line; a short write to a pipe/terminal is not retried (logging must not block). */
	if (write(g_log.fd, line, n) < 0) {
		/* nothing sensible to do */
	}
	errno = saved;
}
