/* control.c - see control.h. The workers' connection lists are walked under each worker's
 * list_lock (the worker takes it only to link and unlink a connection); what a worker changes
 * while the connection lives (bytes, rate, state) is read through __atomic loads. */
#include "control.h"

#include "fwdctl.h"
#include "log.h"
#include "net.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 2

struct control {
	struct fwd_workers *ws;
	struct control_ops ops;
	int lfd, stopfd;
	atomic_ulong served; /* "stats for=usage" answers given (pgw-api's feed: the usage history) */
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct snap {
	uint64_t id, t_start, up, down, rate_up, rate_down;
	int64_t proxy, org;
	struct net_ip client, dst;
	uint16_t client_port, dst_port;
	int relaying;
};

/* Whether c is one the request asks about (c's fixed fields only: set before it was listed). */
static int matches(const struct conn *c, const struct fwdctl_req *q, const struct net_ip *client)
{
	if (q->org != -1 && c->map.org_id != q->org)
		return 0;
	if (q->proxy && c->map.proxy_id != q->proxy)
		return 0;
	if (q->id && c->id != q->id)
		return 0;
	return !q->has_client || memcmp(client, &q->client, sizeof(*client)) == 0;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const struct snap *)a)->id, y = ((const struct snap *)b)->id;

	return x < y ? -1 : x > y;
}

/* Mark the matching connections for closing and wake their workers. How many. */
static unsigned close_matching(struct fwd_workers *ws, const struct fwdctl_req *q)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		unsigned here = 0;
		uint64_t one = 1;

		pthread_mutex_lock(&w->list_lock);
		for (struct conn *c = w->conns; c; c = c->next) {
			struct net_ip ip;
			if (!atomic_load(&c->listed) || net_ip_from_sa(&c->client, &ip) < 0 || !matches(c, q, &ip))
				continue;
			if (!atomic_exchange(&c->kill, 1))
				here++;
		}
		pthread_mutex_unlock(&w->list_lock);
		if (here && write(w->revokefd, &one, sizeof(one)) < 0)
			log_warn("worker %u: close connections", i);
		n += here;
	}
	return n;
}

/* The matching connections after the cursor (all of them counted in *total), by id. */
static struct snap *collect(struct fwd_workers *ws, const struct fwdctl_req *q, size_t *n, size_t *total, int *failed)
{
	struct snap *s = NULL;
	size_t cap = 0;

	*n = *total = 0;
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		pthread_mutex_lock(&w->list_lock);
		for (struct conn *c = w->conns; c; c = c->next) {
			struct snap *e;
			struct net_ip ip;
			if (!atomic_load(&c->listed) || net_ip_from_sa(&c->client, &ip) < 0 || !matches(c, q, &ip))
				continue;
			(*total)++;
			if (c->id <= q->cursor)
				continue;
			if (*n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct snap *ns = realloc(s, nc * sizeof(*s));
				if (!ns) {
					*failed = 1; /* an error, never a short or skipping page */
					break;
				}
				s = ns;
				cap = nc;
			}
			e = &s[(*n)++];
			e->id = c->id;
			e->t_start = c->t_start;
			e->proxy = c->map.proxy_id;
			e->org = c->map.org_id;
			e->client = ip;
			e->client_port = net_sa_port(&c->client);
			if (net_ip_from_sa(&c->dst, &e->dst) < 0)
				memset(&e->dst, 0, sizeof(e->dst));
			e->dst_port = net_sa_port(&c->dst);
			e->up = __atomic_load_n(&c->pub.up, __ATOMIC_RELAXED);
			e->down = __atomic_load_n(&c->pub.down, __ATOMIC_RELAXED);
			e->rate_up = __atomic_load_n(&c->pub.rate_up, __ATOMIC_RELAXED);
			e->rate_down = __atomic_load_n(&c->pub.rate_down, __ATOMIC_RELAXED);
			e->relaying = __atomic_load_n(&c->pub.relaying, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&w->list_lock);
	}
	if (*n > 1)
		qsort(s, *n, sizeof(*s), by_id);
	return s;
}

static void write_conns(FILE *f, struct fwd_workers *ws, const struct fwdctl_req *q)
{
	struct timespec rt;
	size_t n, total, shown;
	int failed = 0;
	struct snap *s = collect(ws, q, &n, &total, &failed);
	uint64_t mono = ev_now_ms();
	long long wall;

	if (failed) {
		free(s);
		fputs("{\"error\":\"out of memory\"}\n", f);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	wall = (long long)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
	shown = n < q->limit ? n : q->limit;
	fprintf(f, "{\"total\":%zu,\"connections\":[", total);
	for (size_t i = 0; i < shown; i++) {
		char cl[NET_IP_STR_MAX], dst[NET_IP_STR_MAX];
		const struct snap *e = &s[i];
		uint64_t age = mono > e->t_start ? mono - e->t_start : 0;
		net_ip_str(&e->client, cl);
		net_ip_str(&e->dst, dst);
		fprintf(
		    f,
		    "%s{\"id\":%llu,\"client_ip\":\"%s\",\"client_port\":%u,\"dst_ip\":\"%s\",\"dst_port\":%u,"
		    "\"proxy_id\":%lld,\"org_id\":%lld,\"state\":\"%s\",\"started_at_ms\":%lld,\"duration_ms\":%llu,"
		    "\"bytes_up\":%llu,\"bytes_down\":%llu,\"rate_up\":%llu,\"rate_down\":%llu}",
		    i ? "," : "", (unsigned long long)e->id, cl, e->client_port, dst, e->dst_port, (long long)e->proxy,
		    (long long)e->org, e->relaying ? "relaying" : "connecting", wall - (long long)age,
		    (unsigned long long)age, (unsigned long long)e->up, (unsigned long long)e->down,
		    (unsigned long long)e->rate_up, (unsigned long long)e->rate_down);
	}
	if (n > shown)
		fprintf(f, "],\"next_cursor\":%llu}\n", (unsigned long long)s[shown - 1].id);
	else
		fprintf(f, "],\"next_cursor\":null}\n");
	free(s);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

char *control_answer(struct control *ctl, const char *line, size_t len, size_t *out_len)
{
	struct fwd_workers *ws = ctl->ws;
	struct fwdctl_req q;
	char err[256], *buf = NULL;
	FILE *f = open_memstream(&buf, out_len);

	if (!f)
		return NULL;
	if (fwdctl_parse(line, len, &q, err, sizeof(err)) < 0) {
		fputs("{\"error\":", f);
		json_str(f, err);
		fputs("}\n", f);
	} else if (q.op == FWDCTL_CONNS) {
		write_conns(f, ws, &q);
	} else if (q.op == FWDCTL_STATS) {
		ctl->ops.stats(ctl->ops.arg, f);
		if (q.for_usage)
			atomic_fetch_add(&ctl->served, 1);
	} else if (q.op == FWDCTL_PING) {
		const char *why = ctl->ops.stalled(ctl->ops.arg);
		if (why) {
			fputs("{\"alive\":false,\"error\":", f);
			json_str(f, why);
			fputs("}\n", f);
		} else {
			fputs("{\"alive\":true}\n", f);
		}
	} else {
		unsigned n = close_matching(ws, &q);
		char who[NET_IP_STR_MAX];
		if (q.has_client) {
			net_ip_str(&q.client, who);
			log_info("control: closing %u connection%s of client %s", n, n == 1 ? "" : "s", who);
		} else {
			log_info("control: closing connection %llu (%s)", (unsigned long long)q.id,
				 n ? "open" : "gone");
		}
		fprintf(f, "{\"closed\":%u}\n", n);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Wait until fd is ready for events before the deadline (ms, CLOCK_MONOTONIC): 0, or -1. */
static int ready(int fd, short events, uint64_t deadline)
{
	uint64_t now = ev_now_ms();
	struct pollfd p = {.fd = fd, .events = events};

	return now < deadline && poll(&p, 1, (int)(deadline - now)) == 1 && (p.revents & (events | POLLHUP)) ? 0 : -1;
}

/* One request: its line (up to FWDCTL_LINE_MAX and "\n"), its answer; the whole exchange within
 * IO_TIMEOUT_S, however slowly the other side sends or reads. A line cut short (no "\n" before
 * the end or the deadline) is refused, never acted on: "close id=123" cut to "id=12" would close
 * another connection. */
static void serve(struct control *ctl, int fd)
{
	uint64_t deadline = ev_now_ms() + IO_TIMEOUT_S * 1000;
	char line[FWDCTL_LINE_MAX + 2], *nl = NULL;
	size_t len = 0, out_len = 0, off = 0;
	char *out;

	while (len < sizeof(line) && !(nl = memchr(line, '\n', len)) && ready(fd, POLLIN, deadline) == 0) {
		ssize_t n = recv(fd, line + len, sizeof(line) - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (!nl)
		nl = memchr(line, '\n', len);
	if (len == 0)
		return;
	if (!nl) {
		static const char incomplete[] = "{\"error\":\"incomplete request (no newline in time)\"}\n";
		send(fd, incomplete, sizeof(incomplete) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		return;
	}
	out = control_answer(ctl, line, (size_t)(nl - line) + 1, &out_len);
	while (out && off < out_len && ready(fd, POLLOUT, deadline) == 0) {
		ssize_t n = send(fd, out + off, out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(out);
}

static void *control_main(void *arg)
{
	struct control *ctl = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the main thread's signalfd */
	for (;;) {
		struct pollfd p[2] = {{.fd = ctl->lfd, .events = POLLIN}, {.fd = ctl->stopfd, .events = POLLIN}};
		int fd;
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) /* out of descriptors: a moment, not a busy loop */
				(void)poll(p + 1, 1, 100);
			continue;
		}
		serve(ctl, fd);
		close(fd);
	}
	return NULL;
}

int control_start(struct fwd_shared *sh, struct fwd_workers *ws, const struct control_ops *ops, struct control **out,
		  char *err, size_t errlen)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	*out = NULL;
	if (!ctl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ctl->ws = ws;
	ctl->ops = *ops;
	ctl->lfd = ctl->stopfd = -1;
	if (fwdctl_path(sh->run_dir, sa.sun_path, sizeof(sa.sun_path)) < 0) {
		snprintf(err, errlen, "PGW_RUN_DIR is too long for a socket path");
		goto fail;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa.sun_path);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ctl->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ctl->lfd < 0 || ctl->stopfd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		goto fail;
	}
	unlink(sa.sun_path); /* a stale one of a previous run (notify.c already refused a second instance) */
	if (bind(ctl->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0660) < 0 ||
	    listen(ctl->lfd, 64) < 0) {
		snprintf(err, errlen, "control socket %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	if (pthread_create(&ctl->thread, NULL, control_main, ctl) != 0) {
		snprintf(err, errlen, "control socket: cannot start its thread");
		goto fail;
	}
	*out = ctl;
	return 0;
fail:
	if (ctl->lfd >= 0)
		close(ctl->lfd);
	if (ctl->stopfd >= 0)
		close(ctl->stopfd);
	free(ctl);
	return -1;
}

unsigned long control_served(struct control *ctl)
{
	return ctl ? atomic_load(&ctl->served) : 0;
}

void control_stop(struct control *ctl)
{
	uint64_t one = 1;

	if (!ctl)
		return;
	if (write(ctl->stopfd, &one, sizeof(one)) < 0)
		log_warn("control socket: stop");
	pthread_join(ctl->thread, NULL);
	close(ctl->lfd);
	close(ctl->stopfd);
	unlink(ctl->path);
	free(ctl);
}
