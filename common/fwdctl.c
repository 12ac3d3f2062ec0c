/* fwdctl.c - see fwdctl.h. */
#include "fwdctl.h"

#include "parse.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail(char *err, size_t errlen, const char *msg)
{
	return bad(err, errlen, "%s", msg);
}

int fwdctl_parse(const char *line, size_t len, struct fwdctl_req *r, char *err, size_t errlen)
{
	char buf[FWDCTL_LINE_MAX + 1], *save = NULL, *tok;
	int seen_proxy = 0, seen_org = 0, seen_limit = 0, seen_cursor = 0;
	uint64_t v;

	memset(r, 0, sizeof(*r));
	r->org = -1;
	r->limit = FWDCTL_PAGE_DEFAULT;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return fail(err, errlen, "empty request");
	if (len > FWDCTL_LINE_MAX)
		return fail(err, errlen, "request longer than 512 bytes");
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return fail(err, errlen, "NUL in the request");
	tok = strtok_r(buf, " ", &save);
	if (!tok)
		return fail(err, errlen, "empty request");
	if (strcmp(tok, "conns") == 0)
		r->op = FWDCTL_CONNS;
	else if (strcmp(tok, "close") == 0)
		r->op = FWDCTL_CLOSE;
	else if (strcmp(tok, "stats") == 0)
		r->op = FWDCTL_STATS;
	else if (strcmp(tok, "ping") == 0)
		r->op = FWDCTL_PING;
	else
		return bad(err, errlen, "unknown request '%.32s'", tok);
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *val = strchr(tok, '=');
		if (r->op == FWDCTL_PING)
			return fail(err, errlen, "ping takes nothing");
		if (r->op == FWDCTL_STATS) {
			if (r->for_usage || strcmp(tok, "for=usage") != 0)
				return fail(err, errlen, "stats takes only for=usage, once");
			r->for_usage = 1;
			continue;
		}
		if (!val)
			return bad(err, errlen, "'%.32s' is not KEY=VALUE", tok);
		*val++ = '\0';
		if (strcmp(tok, "client") == 0) {
			if (r->has_client)
				return bad(err, errlen, "%s given twice", tok);
			if (net_ip_parse(val, &r->client) < 0)
				return bad(err, errlen, "client: '%.64s' is not an IP address", val);
			r->has_client = 1;
		} else if (strcmp(tok, "proxy") == 0) {
			if (seen_proxy++ || parse_u64(val, 1, INT64_MAX, &v) < 0)
				return bad(err, errlen, "%s: a proxy id once", tok);
			r->proxy = (int64_t)v;
		} else if (strcmp(tok, "org") == 0) {
			if (seen_org++)
				return bad(err, errlen, "%s given twice", tok);
			if (strcmp(val, "-1") == 0)
				r->org = -1;
			else if (parse_u64(val, 1, INT64_MAX, &v) == 0)
				r->org = (int64_t)v;
			else
				return bad(err, errlen, "%s: an organisation id or -1", tok);
		} else if (strcmp(tok, "limit") == 0 && r->op == FWDCTL_CONNS) {
			if (seen_limit++ || parse_u64(val, 1, FWDCTL_PAGE_MAX, &v) < 0)
				return bad(err, errlen, "%s: 1 to 1000, once", tok);
			r->limit = (unsigned)v;
		} else if (strcmp(tok, "cursor") == 0 && r->op == FWDCTL_CONNS) {
			if (seen_cursor++ || parse_u64(val, 0, UINT64_MAX, &r->cursor) < 0)
				return bad(err, errlen, "%s: a connection id, once", tok);
		} else if (strcmp(tok, "id") == 0) {
			if (r->id || parse_u64(val, 1, UINT64_MAX, &r->id) < 0)
				return bad(err, errlen, "%s: a connection id, once", tok);
		} else {
			return bad(err, errlen, "unknown key '%.32s'", tok);
		}
	}
	if (r->op == FWDCTL_CLOSE && !r->id == !r->has_client)
		return fail(err, errlen, "close needs id=ID or client=IP (one of them)");
	if (r->op == FWDCTL_CLOSE && r->proxy)
		return fail(err, errlen, "close takes no proxy");
	return 0;
}

int fwdctl_path(const char *run_dir, char *buf, size_t size)
{
	struct sockaddr_un sa;
	int n = snprintf(buf, size, "%s/" FWDCTL_SOCK, run_dir);

	return n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sa.sun_path) ? -1 : 0;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events before deadline (ms, CLOCK_MONOTONIC); 0, or -ETIMEDOUT /
 * -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n;

	do {
		long long left = deadline - mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n == 0 ? -ETIMEDOUT : 0;
}

int fwdctl_call(const char *run_dir, const char *line, char **reply, size_t *len, int timeout_ms, char *err,
		size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(line), off = 0, cap = 0;
	char *buf = NULL;
	int fd, r = 0;
	long long deadline = mono_ms() + timeout_ms; /* the whole exchange, however the other side trickles */

	*reply = NULL;
	*len = 0;
	if (fwdctl_path(run_dir, sa.sun_path, sizeof(sa.sun_path)) < 0) {
		snprintf(err, errlen, "PGW_RUN_DIR is too long for a socket path");
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "pgw-forwarder's control socket %s: %s", sa.sun_path, strerror(errno));
		goto out;
	}
	while (off < n) {
		ssize_t w;
		if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
			goto io;
		w = send(fd, line + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			r = -errno;
			goto io;
		}
		off += w > 0 ? (size_t)w : 0;
	}
	off = 0;
	for (;;) {
		ssize_t got;
		if (cap - off < 4096) {
			char *nb;
			if (cap >= FWDCTL_REPLY_MAX) {
				r = -EMSGSIZE;
				goto io;
			}
			cap = cap ? cap * 2 : 16384;
			if (!(nb = realloc(buf, cap + 1))) {
				r = -ENOMEM;
				goto io;
			}
			buf = nb;
		}
		if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
			goto io;
		got = recv(fd, buf + off, cap - off, 0);
		if (got == 0)
			break;
		if (got < 0 && errno != EAGAIN && errno != EINTR) {
			r = -errno;
			goto io;
		}
		off += got > 0 ? (size_t)got : 0;
	}
	buf[off] = '\0';
	*reply = buf;
	*len = off;
	close(fd);
	return 0;
io:
	snprintf(err, errlen, "pgw-forwarder's control socket: %s",
		 r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
	free(buf);
out:
	if (fd >= 0)
		close(fd);
	return r ? r : -EIO;
}
