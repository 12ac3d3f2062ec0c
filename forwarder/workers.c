/* workers.c - see workers.h. */
#include "workers.h"

#include "log.h"
#include "pool.h"
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <linux/close_range.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int workers_alive(struct fwd_workers *ws, uint64_t max_ms)
{
	uint64_t now = ev_now_ms();

	for (unsigned i = 0; ws && i < ws->n; i++) {
		uint64_t t = atomic_load(&ws->w[i].last_tick);
		if (ws->w[i].started && t && now > t + max_ms)
			return 0;
	}
	return 1;
}

/* Wake every running worker through one of its eventfds (stopfd or revokefd). */
static void wake_workers(struct fwd_workers *ws, int revoke)
{
	uint64_t one = 1;

	for (unsigned i = 0; ws && i < ws->n; i++)
		if (ws->w[i].started && write(revoke ? ws->w[i].revokefd : ws->w[i].stopfd, &one, sizeof(one)) < 0)
			log_warn("worker %u: %s", i, revoke ? "revalidate" : "stop");
}

void workers_revalidate(struct fwd_workers *ws)
{
	wake_workers(ws, 1);
}

static void on_stop(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* eventfd: nothing to do */
	}
	for (int i = 0; i < L_MAX; i++) {
		ev_del(ev, w->lh[i]);
		w->lh[i] = NULL;
		if (w->lfd[i] >= 0)
			close(w->lfd[i]);
		w->lfd[i] = -1;
	}
	w->draining = 1;
	pool_free_all(w); /* sessions kept ready: no connection will come for them */
	pthread_rwlock_rdlock(&w->sh->lock);
	w->drain_until = ev_now_ms() + w->sh->limits.drain_timeout_ms;
	pthread_rwlock_unlock(&w->sh->lock);
	if (!w->conns && !w->n_resets) /* (the bytes on their way before a reset: the tick ends it) */
		ev_stop(ev);
}

/* Gives the calling worker thread a descriptor table of its own. The process's descriptor limit
 * (RLIMIT_NOFILE) counts per table, so each worker may hold that many (a gateway whose hard
 * limit cannot be raised holds up to workers x limit / 2 connections, not limit / 2), and the
 * kernel's descriptor lookups skip the reference counting a shared table needs. The copy it
 * starts with (some thirty descriptors, once, at start) is closed but for stdio, the log and the
 * worker's two eventfds (the main and the control thread write to their copies to wake it);
 * everything else the worker opens itself, after this. Where unsharing is refused (a seccomp
 * filter), it shares the process's table as before. 1: a table of its own. */
static int own_fd_table(const struct worker *w)
{
	DIR *d;
	struct dirent *e;

	if (unshare(CLONE_FILES) < 0 && close_range(~0U, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		return 0;
	if (!(d = opendir("/proc/thread-self/fd"))) {
		log_warn("a relay thread cannot close its copies of the process's descriptors");
		return 1; /* they stay open in its table: unused, but they keep what they point to open */
	}
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end || end == e->d_name || fd < 3 || fd == dirfd(d) || fd == w->stopfd || fd == w->revokefd ||
		    fd == log_get_fd())
			continue;
		close((int)fd);
	}
	closedir(d);
	return 1;
}

static int worker_init(struct worker *w);
static void worker_fini(struct worker *w);

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;
	char name[16];

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the main thread's signalfd */
	snprintf(name, sizeof(name), "pgw-worker%u", w->index);
	pthread_setname_np(pthread_self(), name); /* top -H, /proc/PID/task/TID/comm */
	w->own_fds = own_fd_table(w);
	w->init_rc = worker_init(w);
	sem_post(&w->ready);
	if (w->init_rc < 0) {
		worker_fini(w);
		return NULL;
	}
	ev_run(w->ev);
	while (w->conns)
		conn_close(w->conns, CLOSE_SHUTDOWN, UP_OK);
	relay_resets_due(w, 0, 1);
	pool_free_all(w);
	worker_fini(w);
	return NULL;
}

/* Any address, one family (IPv6 sockets are IPv6 only, so both can share the port). Accepted
 * sockets inherit TCP_NODELAY and SO_KEEPALIVE from it: two system calls fewer a connection. */
static int listen_on(int family, uint16_t port, int transparent)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if ((family == AF_INET6 && setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    (transparent && family == AF_INET && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0) ||
	    (transparent && family == AF_INET6 && setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    (family == AF_INET6 ? bind(fd, (struct sockaddr *)&sa6, sizeof(sa6))
				: bind(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 ||
	    listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* In the worker's thread, in its own table: its listeners, loop, timers and notify socket. */
static int worker_init(struct worker *w)
{
	struct fwd_shared *sh = w->sh;
	char nerr[256];
	unsigned i = w->index;

	w->lfd[L_REDIR4] = listen_on(AF_INET, sh->port, 0);
	if (w->lfd[L_REDIR4] < 0) {
		snprintf(w->err, sizeof(w->err), "PGW_FORWARDER_PORT: cannot listen on port %u: %s", sh->port,
			 strerror(-w->lfd[L_REDIR4]));
		return -1;
	}
	w->lfd[L_REDIR6] = listen_on(AF_INET6, sh->port, 0);
	if (w->lfd[L_REDIR6] < 0 && i == 0)
		log_warnx("no IPv6 listener on port %u (%s): IPv4 clients only", sh->port, strerror(-w->lfd[L_REDIR6]));
	w->lfd[L_TPROXY4] = listen_on(AF_INET, sh->tproxy_port, 1);
	if (w->lfd[L_TPROXY4] < 0 && i == 0)
		log_warnx("TPROXY listener on port %u unavailable (%s; it needs CAP_NET_ADMIN): REDIRECT mode only",
			  sh->tproxy_port, strerror(-w->lfd[L_TPROXY4]));
	if (w->lfd[L_TPROXY4] >= 0)
		w->lfd[L_TPROXY6] = listen_on(AF_INET6, sh->tproxy_port, 1);
	w->spare_fd = eventfd(0, EFD_CLOEXEC);
	TAILQ_INIT(&w->pipe_line);
	w->ev = ev_new();
	w->nt = notify_open(sh->run_dir, NULL, nerr, sizeof(nerr)); /* send-only */
	if (!w->ev || !(w->sh_h = ev_add_fd(w->ev, w->stopfd, EPOLLIN, on_stop, w)) ||
	    !(w->rv_h = ev_add_fd(w->ev, w->revokefd, EPOLLIN, relay_on_revoke, w)) ||
	    !(w->tick = ev_add_timer(w->ev, 1000, 1000, relay_on_tick, w)) ||
	    !(w->early_timer = ev_add_timer(w->ev, 3600 * 1000, 0, relay_on_early_timer, w)) ||
	    !(w->pipe_timer = ev_add_timer(w->ev, 3600 * 1000, 0, relay_on_pipe_timer, w))) {
		snprintf(w->err, sizeof(w->err), "worker %u: %s", i, strerror(errno));
		return -1;
	}
	for (int l = 0; l < L_MAX; l++) {
		if (w->lfd[l] < 0) {
			w->lfd[l] = -1;
			continue;
		}
		if (!(w->lh[l] = ev_add_fd(w->ev, w->lfd[l], EPOLLIN, relay_on_accept, w))) {
			snprintf(w->err, sizeof(w->err), "worker %u: %s", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* In the worker's thread: closes what it opened (its table, when its own, goes with the thread;
 * when shared, these would stay open in the process). */
static void worker_fini(struct worker *w)
{
	for (int l = 0; l < L_MAX; l++) {
		if (w->lfd[l] >= 0)
			close(w->lfd[l]);
		w->lfd[l] = -1;
	}
	if (w->spare_fd >= 0)
		close(w->spare_fd);
	w->spare_fd = -1;
	notify_close(w->nt);
	w->nt = NULL;
	ev_free(w->ev);
	w->ev = NULL;
	while (w->n_pipes) {
		w->n_pipes--;
		close(w->pipes[w->n_pipes][0]);
		close(w->pipes[w->n_pipes][1]);
	}
}

int workers_start(struct fwd_shared *sh, unsigned n, struct fwd_workers **out, char *err, size_t errlen)
{
	struct fwd_workers *ws = calloc(1, sizeof(*ws));

	if (!ws || !(ws->w = calloc(n, sizeof(*ws->w)))) {
		free(ws);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ws->n = n;
	for (unsigned i = 0; i < n; i++) {
		ws->w[i].stopfd = ws->w[i].revokefd = ws->w[i].spare_fd = -1;
		pthread_mutex_init(&ws->w[i].list_lock, NULL);
		sem_init(&ws->w[i].ready, 0, 0);
		for (int l = 0; l < L_MAX; l++)
			ws->w[i].lfd[l] = -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &ws->w[i];

		w->sh = sh;
		w->index = i;
		w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->revokefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->stopfd < 0 || w->revokefd < 0) {
			snprintf(err, errlen, "worker %u: %s", i, strerror(errno));
			goto fail;
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			snprintf(err, errlen, "worker %u: cannot start thread", i);
			goto fail;
		}
		w->started = 1;
		while (sem_wait(&w->ready) < 0 && errno == EINTR)
			;
		if (w->init_rc < 0) {
			snprintf(err, errlen, "%s", w->err);
			goto fail;
		}
	}
	if (!ws->w[0].own_fds)
		log_warnx("the relay threads share the process's descriptor table (unsharing it was refused): "
			  "the descriptor limit bounds all their connections together");
	*out = ws;
	return 0;
fail:
	workers_stop(ws);
	return -EIO;
}

void workers_join(struct fwd_workers *ws)
{
	if (!ws)
		return;
	wake_workers(ws, 0);
	for (unsigned i = 0; i < ws->n; i++)
		if (ws->w[i].started) {
			pthread_join(ws->w[i].thread, NULL);
			ws->w[i].started = 0;
		}
}

void workers_stop(struct fwd_workers *ws)
{
	if (!ws)
		return;
	workers_join(ws);
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		if (w->stopfd >= 0)
			close(w->stopfd);
		if (w->revokefd >= 0)
			close(w->revokefd);
		pthread_mutex_destroy(&w->list_lock);
		sem_destroy(&w->ready);
	}
	free(ws->w);
	free(ws);
}
