/* notify.c - see notify.h.
 * Wire format (96 bytes, big endian): "PGWN" | version u8 = 1 | type u8 | reserved u16 |
 * topics u32 | id i64 | seq u64 | status u32 | value i32 | text_len u8 | text[text_len] | zero pad. */
#include "notify.h"

#include "evloop.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_MAGIC   "PGWN"
#define NOTIFY_VERSION 1
#define TEXT_OFF       37

_Static_assert(TEXT_OFF + NOTIFY_TEXT_MAX - 1 == NOTIFY_WIRE_SIZE, "text must fit the datagram");

const char *const notify_peers[] = {"agent", "forwarder", "healthd", "api", NULL};

struct notify {
	int fd;
	uint64_t seq;
	char run_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char name[NOTIFY_NAME_MAX];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

void notify_encode(const struct notify_msg *m, uint8_t buf[NOTIFY_WIRE_SIZE])
{
	size_t tl = strnlen(m->text, NOTIFY_TEXT_MAX - 1);

	memset(buf, 0, NOTIFY_WIRE_SIZE);
	memcpy(buf, NOTIFY_MAGIC, 4);
	buf[4] = NOTIFY_VERSION;
	buf[5] = m->type;
	put_be(buf + 8, m->topics, 4);
	put_be(buf + 12, (uint64_t)m->id, 8);
	put_be(buf + 20, m->seq, 8);
	put_be(buf + 28, m->status, 4);
	put_be(buf + 32, (uint32_t)m->value, 4);
	buf[36] = (uint8_t)tl;
	memcpy(buf + TEXT_OFF, m->text, tl);
}

int notify_decode(const uint8_t *buf, size_t len, struct notify_msg *m)
{
	size_t tl;

	if (len != NOTIFY_WIRE_SIZE || memcmp(buf, NOTIFY_MAGIC, 4) != 0 || buf[4] != NOTIFY_VERSION)
		return -EBADMSG;
	tl = buf[36];
	if (tl >= NOTIFY_TEXT_MAX || memchr(buf + TEXT_OFF, '\0', tl))
		return -EBADMSG;
	memset(m, 0, sizeof(*m));
	m->type = buf[5];
	m->topics = (uint32_t)get_be(buf + 8, 4);
	m->id = (int64_t)get_be(buf + 12, 8);
	m->seq = get_be(buf + 20, 8);
	m->status = (uint32_t)get_be(buf + 28, 4);
	m->value = (int32_t)(uint32_t)get_be(buf + 32, 4);
	memcpy(m->text, buf + TEXT_OFF, tl);
	if (m->type < NOTIFY_CHANGED || m->type > NOTIFY_UPSTREAM_FAILED)
		return -ENOTSUP;
	return 0;
}

const char *notify_type_str(int type)
{
	switch (type) {
	case NOTIFY_CHANGED:
		return "changed";
	case NOTIFY_CHECK_REQUEST:
		return "check_request";
	case NOTIFY_CHECK_RESULT:
		return "check_result";
	case NOTIFY_UPSTREAM_FAILED:
		return "upstream_failed";
	}
	return "unknown";
}

static int name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= NOTIFY_NAME_MAX)
		return 0;
	for (; *name; name++)
		if (!islower((unsigned char)*name) && !isdigit((unsigned char)*name) && *name != '-')
			return 0;
	return 1;
}

static int sock_path(const char *run_dir, const char *name, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.sock", run_dir, name);
	return n < 0 || (size_t)n >= sizeof(sa->sun_path) ? -ENAMETOOLONG : 0;
}

struct notify *notify_open(const char *run_dir, const char *name, char *err, size_t errlen)
{
	struct notify *n = calloc(1, sizeof(*n));
	struct sockaddr_un sa;

	if (!n) {
		snprintf(err, errlen, "notify: out of memory");
		return NULL;
	}
	n->fd = -1;
	if (name && !name_valid(name)) {
		snprintf(err, errlen, "notify: invalid socket name '%s' (a-z, 0-9, '-')", name);
		goto fail;
	}
	if (strlen(run_dir) >= sizeof(n->run_dir)) {
		snprintf(err, errlen, "PGW_RUN_DIR: '%s' is too long for a socket path", run_dir);
		goto fail;
	}
	strcpy(n->run_dir, run_dir);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		snprintf(err, errlen, "notify: socket: %s", strerror(errno));
		goto fail;
	}
	if (name) {
		if (sock_path(run_dir, name, &sa) < 0) {
			snprintf(err, errlen, "PGW_RUN_DIR: '%s' is too long for a socket path", run_dir);
			goto fail;
		}
		if (mkdir(run_dir, 0750) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "PGW_RUN_DIR: cannot create '%s': %s", run_dir, strerror(errno));
			goto fail;
		}
		/* a socket someone still answers on is another instance of this daemon on the same
		 * run dir: taking it over would silently steal its notifications */
		if (connect(n->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen,
				 "PGW_RUN_DIR: another pgw-%s is running on '%s' (its socket answers); stop it or "
				 "give this one a run dir of its own",
				 name, run_dir);
			goto fail;
		}
		unlink(sa.sun_path);
		if (bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			snprintf(err, errlen, "PGW_RUN_DIR: cannot bind '%s': %s", sa.sun_path, strerror(errno));
			goto fail;
		}
		chmod(sa.sun_path, 0660);
		snprintf(n->name, sizeof(n->name), "%s", name);
		strcpy(n->path, sa.sun_path);
	}
	return n;
fail:
	if (n->fd >= 0)
		close(n->fd);
	free(n);
	return NULL;
}

void notify_close(struct notify *n)
{
	if (!n)
		return;
	if (n->path[0])
		unlink(n->path);
	close(n->fd);
	free(n);
}

int notify_fd(const struct notify *n)
{
	return n->fd;
}

int notify_send(struct notify *n, const char *peer, const struct notify_msg *m)
{
	struct notify_msg copy = *m;
	uint8_t buf[NOTIFY_WIRE_SIZE];
	struct sockaddr_un sa;

	if (!name_valid(peer) || sock_path(n->run_dir, peer, &sa) < 0)
		return -EINVAL;
	if (copy.seq == 0)
		copy.seq = ++n->seq;
	notify_encode(&copy, buf);
	if (sendto(n->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return 0;
}

int notify_broadcast(struct notify *n, const struct notify_msg *m)
{
	int delivered = 0;

	for (int i = 0; notify_peers[i]; i++) {
		if (strcmp(notify_peers[i], n->name) == 0)
			continue;
		if (notify_send(n, notify_peers[i], m) == 0)
			delivered++;
	}
	return delivered;
}

int notify_recv(struct notify *n, struct notify_msg *m, char *from, size_t fromlen)
{
	uint8_t buf[NOTIFY_WIRE_SIZE + 1];
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	ssize_t len;

	memset(&sa, 0, sizeof(sa));
	len = recvfrom(n->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&sa, &salen);
	if (len < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (from && fromlen) {
		char path[sizeof(sa.sun_path) + 1];
		const char *base;
		size_t bl, pl = salen > offsetof(struct sockaddr_un, sun_path)
				    ? salen - offsetof(struct sockaddr_un, sun_path)
				    : 0;

		/* a sender's path need not end in a NUL (108 bytes): bounded by the length given */
		if (pl > sizeof(sa.sun_path))
			pl = sizeof(sa.sun_path);
		memcpy(path, sa.sun_path, pl);
		path[pl] = '\0';
		base = strrchr(path, '/');

		from[0] = '\0';
		if (salen > offsetof(struct sockaddr_un, sun_path) && base) {
			base++;
			bl = strlen(base);
			if (bl > 5 && strcmp(base + bl - 5, ".sock") == 0 && bl - 5 < fromlen) {
				memcpy(from, base, bl - 5);
				from[bl - 5] = '\0';
			}
		}
	}
	return notify_decode(buf, (size_t)len, m);
}

int notify_check(struct notify *n, int64_t proxy_id, unsigned wait_ms, struct notify_msg *res)
{
	int st, r = notify_check_many(n, &proxy_id, 1, 1, wait_ms, wait_ms, res, &st);

	return r < 0 ? r : st; /* (never -ECANCELED: no other one to be decided by) */
}

/* One notify_check_many call: what is asked and what is decided so far. */
struct check_run {
	struct notify *n;
	const int64_t *ids;
	int *st;
	size_t next, n_asked; /* ids[next] is the next to ask; asked[] the open asks */
	unsigned wait_ms;
	uint64_t until;	     /* ev_now_ms: the total is over */
	uint64_t full_since; /* healthd's queue was full for ids[next] since then (0: it was not) */
	int decided;	     /* one down or not answered: the caller refuses whatever the rest say */
	struct {
		size_t i;	   /* into ids */
		uint64_t deadline; /* ev_now_ms */
	} asked[NOTIFY_CHECK_WINDOW];
};

enum ask { ASKED, ASK_FULL, ASK_GIVEN_UP, ASK_FAILED };

/* Ask healthd about ids[c->next]. Its queue full: ASK_FULL, to be asked again shortly, within the
 * ask's own wait (counted from its first try) and the total; past either, given up as unanswered. */
static enum ask ask_next(struct check_run *c, uint64_t now)
{
	struct notify_msg req = {.type = NOTIFY_CHECK_REQUEST, .id = c->ids[c->next]};
	int r = notify_send(c->n, "healthd", &req);

	if (r == -EAGAIN) {
		if (!c->full_since)
			c->full_since = now;
		if (now - c->full_since < c->wait_ms && now < c->until)
			return ASK_FULL;
		c->st[c->next++] = -ETIMEDOUT;
		c->full_since = 0;
		c->decided = 1;
		return ASK_GIVEN_UP;
	}
	if (r < 0)
		return ASK_FAILED;
	c->asked[c->n_asked].i = c->next++;
	c->asked[c->n_asked++].deadline = (c->full_since ? c->full_since : now) + c->wait_ms;
	c->full_since = 0;
	return ASKED;
}

/* The open asks past their wait: not answered. */
static void expire(struct check_run *c, uint64_t now)
{
	for (size_t j = 0; j < c->n_asked;)
		if (c->asked[j].deadline <= now) {
			c->st[c->asked[j].i] = -ETIMEDOUT;
			c->decided = 1;
			c->asked[j] = c->asked[--c->n_asked];
		} else {
			j++;
		}
}

/* An answer: the open ask of its proxy is decided (one for no open ask is a late answer to an ask
 * already given up, and ignored). */
static void take_answer(struct check_run *c, const struct notify_msg *m, struct notify_msg *res)
{
	for (size_t j = 0; j < c->n_asked; j++)
		if (c->ids[c->asked[j].i] == m->id) {
			res[c->asked[j].i] = *m;
			c->st[c->asked[j].i] = m->status ? 1 : 0;
			c->decided |= !m->status;
			c->asked[j] = c->asked[--c->n_asked];
			return;
		}
}

int notify_check_many(struct notify *n, const int64_t *ids, size_t k, size_t window, unsigned wait_ms,
		      unsigned total_ms, struct notify_msg *res, int *st)
{
	struct check_run c = {.n = n, .ids = ids, .st = st, .wait_ms = wait_ms, .until = ev_now_ms() + total_ms};
	struct notify_msg m;

	if (window < 1 || window > NOTIFY_CHECK_WINDOW)
		window = NOTIFY_CHECK_WINDOW;
	for (size_t i = 0; i < k; i++)
		st[i] = -ECANCELED;
	while (notify_recv(n, &m, NULL, 0) != -EAGAIN) /* stale answers from an ask that timed out */
		;
	for (;;) {
		struct pollfd pfd = {.fd = notify_fd(n), .events = POLLIN};
		uint64_t now = ev_now_ms(), first = UINT64_MAX;
		enum ask a = ASKED;

		while (a != ASK_FULL && c.n_asked < window && c.next < k && !(c.decided && now >= c.until))
			if ((a = ask_next(&c, now)) == ASK_FAILED)
				return -ENOENT;
		if (!c.n_asked && a != ASK_FULL)
			return 0;
		for (size_t j = 0; j < c.n_asked; j++)
			first = c.asked[j].deadline < first ? c.asked[j].deadline : first;
		if (a == ASK_FULL && now + NOTIFY_FULL_RETRY_MS < first)
			first = now + NOTIFY_FULL_RETRY_MS;
		if (now >= first)
			expire(&c, now);
		else if (poll(&pfd, 1, (int)(first - now)) > 0 && notify_recv(n, &m, NULL, 0) == 0 &&
			 m.type == NOTIFY_CHECK_RESULT)
			take_answer(&c, &m, res);
	}
}
