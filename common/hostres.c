/* hostres.c - see hostres.h. */
#include "hostres.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	char host[NET_HOST_MAX + 1];
	uint16_t port;
	int ok;
	struct sockaddr_storage addr;
};

/* Static, not allocated: the thread may still be inside getaddrinfo() when the process exits. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job todo[HOSTRES_QUEUE_MAX], done[HOSTRES_QUEUE_MAX];
	size_t n_todo, n_done;
	struct job busy[HOSTRES_THREADS]; /* the ones being resolved, one per thread (host[0]: none) */
	int efd;
	size_t started; /* threads running */
	hostres_done_cb cb;
	void *arg;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .efd = -1};

static void *run(void *arg)
{
	size_t me = (size_t)(uintptr_t)arg;
	sigset_t all;

	sigfillset(&all); /* signals are the main thread's */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&R.lock);
	for (;;) {
		struct job j;
		uint64_t one = 1;

		while (!R.n_todo || R.n_done + HOSTRES_THREADS > HOSTRES_QUEUE_MAX)
			pthread_cond_wait(&R.wake, &R.lock);
		j = R.todo[0];
		memmove(&R.todo[0], &R.todo[1], --R.n_todo * sizeof(R.todo[0]));
		R.busy[me] = j;
		pthread_mutex_unlock(&R.lock);
		j.ok = net_resolve(j.host, j.port, &j.addr) == 0;
		pthread_mutex_lock(&R.lock);
		R.busy[me].host[0] = '\0';
		R.done[R.n_done++] = j;
		if (write(R.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warnx("resolver: cannot wake the loop: %s", strerror(errno));
	}
	return NULL;
}

static void on_results(struct evloop *ev, int fd, uint32_t events, void *unused)
{
	struct job got[HOSTRES_QUEUE_MAX];
	uint64_t n;
	size_t k;

	(void)ev, (void)events, (void)unused;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&R.lock);
	k = R.n_done;
	memcpy(got, R.done, k * sizeof(got[0]));
	R.n_done = 0;
	pthread_cond_broadcast(&R.wake); /* room for results again */
	pthread_mutex_unlock(&R.lock);
	for (size_t i = 0; i < k; i++)
		R.cb(R.arg, got[i].host, got[i].port, got[i].ok, &got[i].addr);
	if (k)
		R.cb(R.arg, NULL, 0, 0, NULL); /* the end of a batch */
}

int hostres_start(struct evloop *ev, hostres_done_cb done, void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	int r;

	R.cb = done;
	R.arg = arg;
	R.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (R.efd < 0)
		return -errno;
	if (!ev_add_fd(ev, R.efd, EPOLLIN, on_results, NULL)) {
		close(R.efd);
		R.efd = -1;
		return -ENOMEM;
	}
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	for (size_t i = 0; i < HOSTRES_THREADS; i++)
		if ((r = pthread_create(&t, &at, run, (void *)(uintptr_t)i)) != 0)
			break; /* (the ones started go on; fewer at once) */
		else
			R.started++;
	pthread_attr_destroy(&at);
	return r && !R.started ? -r : 0;
}

int hostres_ask(const char *host, uint16_t port)
{
	int r = 0;

	pthread_mutex_lock(&R.lock);
	for (size_t i = 0; i < HOSTRES_THREADS; i++)
		if (R.busy[i].host[0] && R.busy[i].port == port && strcmp(R.busy[i].host, host) == 0)
			goto out;
	for (size_t i = 0; i < R.n_todo; i++)
		if (R.todo[i].port == port && strcmp(R.todo[i].host, host) == 0)
			goto out;
	if (R.n_todo == HOSTRES_QUEUE_MAX) {
		r = -EAGAIN;
		goto out;
	}
	memset(&R.todo[R.n_todo], 0, sizeof(R.todo[0]));
	snprintf(R.todo[R.n_todo].host, sizeof(R.todo[0].host), "%s", host);
	R.todo[R.n_todo++].port = port;
	pthread_cond_signal(&R.wake);
out:
	pthread_mutex_unlock(&R.lock);
	return r;
}
