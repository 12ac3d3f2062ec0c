/* evloop.c - see evloop.h. Handles freed inside a callback are parked and released after the
 * current epoll batch, so a stale event for them is never dispatched. */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum ev_kind { EV_FD, EV_TIMER, EV_SIGNAL };

struct ev_handle {
	enum ev_kind kind;
	int fd;
	int dead;
	void *cb;
	void *arg;
	sigset_t sigs;
	struct ev_handle *prev, *next; /* live handles, so ev_free releases what is left */
	struct ev_handle *next_dead;
};

struct evloop {
	int epfd;
	int running;
	struct ev_handle *live;
	struct ev_handle *dead;
};

uint64_t ev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ev_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct evloop *ev_new(void)
{
	struct evloop *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ev->epfd < 0) {
		free(ev);
		return NULL;
	}
	return ev;
}

static void reap(struct evloop *ev)
{
	while (ev->dead) {
		struct ev_handle *h = ev->dead;
		ev->dead = h->next_dead;
		free(h);
	}
}

void ev_free(struct evloop *ev)
{
	if (!ev)
		return;
	while (ev->live)
		ev_del(ev, ev->live);
	reap(ev);
	close(ev->epfd);
	free(ev);
}

static struct ev_handle *add(struct evloop *ev, enum ev_kind kind, int fd, uint32_t events, void *cb, void *arg)
{
	struct ev_handle *h = calloc(1, sizeof(*h));
	struct epoll_event ee = {.events = events};

	if (!h)
		return NULL;
	h->kind = kind;
	h->fd = fd;
	h->cb = cb;
	h->arg = arg;
	ee.data.ptr = h;
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
		int e = errno;
		free(h);
		errno = e;
		return NULL;
	}
	h->next = ev->live;
	if (ev->live)
		ev->live->prev = h;
	ev->live = h;
	return h;
}

struct ev_handle *ev_add_fd(struct evloop *ev, int fd, uint32_t events, ev_fd_cb cb, void *arg)
{
	return add(ev, EV_FD, fd, events, (void *)cb, arg);
}

int ev_mod_fd(struct evloop *ev, struct ev_handle *h, uint32_t events)
{
	struct epoll_event ee = {.events = events, .data.ptr = h};

	return epoll_ctl(ev->epfd, EPOLL_CTL_MOD, h->fd, &ee) < 0 ? -errno : 0;
}

void ev_set_cb(struct ev_handle *h, ev_fd_cb cb, void *arg)
{
	h->cb = (void *)cb;
	h->arg = arg;
}

int ev_timer_set(struct ev_handle *h, uint64_t first_ms, uint64_t interval_ms)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(first_ms / 1000);
	its.it_value.tv_nsec = (long)(first_ms % 1000) * 1000000L;
	if (first_ms == 0) /* an all-zero value would disarm: fire as soon as possible instead */
		its.it_value.tv_nsec = 1;
	its.it_interval.tv_sec = (time_t)(interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	return timerfd_settime(h->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int ev_timer_stop(struct ev_handle *h)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its)); /* all zero: disarmed */
	return timerfd_settime(h->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

struct ev_handle *ev_add_timer(struct evloop *ev, uint64_t first_ms, uint64_t interval_ms, ev_timer_cb cb, void *arg)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct ev_handle *h;

	if (fd < 0)
		return NULL;
	h = add(ev, EV_TIMER, fd, EPOLLIN, (void *)cb, arg);
	if (!h || ev_timer_set(h, first_ms, interval_ms) < 0) {
		if (h)
			ev_del(ev, h);
		else
			close(fd);
		return NULL;
	}
	return h;
}

struct ev_handle *ev_add_signals(struct evloop *ev, const int *signals, int n, ev_signal_cb cb, void *arg)
{
	struct ev_handle *h;
	sigset_t set;
	int fd;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return NULL;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	h = add(ev, EV_SIGNAL, fd, EPOLLIN, (void *)cb, arg);
	if (!h) {
		close(fd);
		return NULL;
	}
	h->sigs = set;
	return h;
}

static void del(struct evloop *ev, struct ev_handle *h, int closing)
{
	if (!h || h->dead)
		return;
	if (!closing || h->kind != EV_FD)
		epoll_ctl(ev->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	if (h->kind != EV_FD)
		close(h->fd);
	if (h->kind == EV_SIGNAL)
		sigprocmask(SIG_UNBLOCK, &h->sigs, NULL);
	if (h->prev)
		h->prev->next = h->next;
	else
		ev->live = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->dead = 1;
	h->next_dead = ev->dead;
	ev->dead = h;
}

void ev_del(struct evloop *ev, struct ev_handle *h)
{
	del(ev, h, 0);
}

void ev_forget(struct evloop *ev, struct ev_handle *h)
{
	del(ev, h, 1);
}

static void dispatch(struct evloop *ev, struct ev_handle *h, uint32_t events)
{
	uint64_t ticks;
	struct signalfd_siginfo si;

	switch (h->kind) {
	case EV_FD:
		((ev_fd_cb)h->cb)(ev, h->fd, events, h->arg);
		break;
	case EV_TIMER:
		if (read(h->fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
			((ev_timer_cb)h->cb)(ev, h->arg);
		break;
	case EV_SIGNAL:
		while (!h->dead && read(h->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			((ev_signal_cb)h->cb)(ev, (int)si.ssi_signo, h->arg);
		break;
	}
}

int ev_run(struct evloop *ev)
{
	struct epoll_event events[64];

	ev->running = 1;
	while (ev->running) {
		int n = epoll_wait(ev->epfd, events, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && ev->running; i++) {
			struct ev_handle *h = events[i].data.ptr;
			if (!h->dead)
				dispatch(ev, h, events[i].events);
		}
		reap(ev);
	}
	return 0;
}

void ev_stop(struct evloop *ev)
{
	ev->running = 0;
}
