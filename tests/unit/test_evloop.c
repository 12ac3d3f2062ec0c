/* The event loop: fds, monotonic timers, signals via signalfd, removal inside callbacks. */
#include "testlib.h"

#include "evloop.h"

#include <fcntl.h>
#include <signal.h>

struct counter {
	int n, stop_at;
	struct ev_handle *other;
};

static void tick(struct evloop *ev, void *arg)
{
	struct counter *c = arg;

	if (++c->n == c->stop_at)
		ev_stop(ev);
}

static void test_timer_repeats(void **state)
{
	struct evloop *ev = ev_new();
	struct counter c = {.stop_at = 3};
	uint64_t t0 = ev_now_ms();

	(void)state;
	assert_non_null(ev_add_timer(ev, 10, 10, tick, &c));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(c.n, 3);
	assert_true(ev_now_ms() - t0 >= 25); /* three 10 ms periods cannot finish sooner */
	ev_free(ev);
}

/* A stopped timer fires no more until set again: a 20 ms timer stopped at once, a 60 ms one
 * ends the run; the first is set again afterwards and fires. */
static void test_timer_stopped(void **state)
{
	struct evloop *ev = ev_new();
	struct counter stopped = {.stop_at = 1}, end = {.stop_at = 1};
	struct ev_handle *h;

	(void)state;
	assert_non_null(h = ev_add_timer(ev, 20, 0, tick, &stopped));
	assert_int_equal(ev_timer_stop(h), 0);
	assert_non_null(ev_add_timer(ev, 60, 0, tick, &end));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(end.n, 1);
	assert_int_equal(stopped.n, 0);
	assert_int_equal(ev_timer_set(h, 1, 0), 0);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(stopped.n, 1);
	ev_free(ev);
}

static void on_read(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	char buf[16];
	struct counter *c = arg;

	assert_true(events & EPOLLIN);
	c->n += (int)read(fd, buf, sizeof(buf));
	ev_stop(ev);
}

static void test_fd_readable(void **state)
{
	struct evloop *ev = ev_new();
	struct counter c = {0};
	int fds[2];

	(void)state;
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_non_null(ev_add_fd(ev, fds[0], EPOLLIN, on_read, &c));
	assert_int_equal(write(fds[1], "hello", 5), 5);
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(c.n, 5);
	ev_free(ev);
	close(fds[0]);
	close(fds[1]);
}

static void on_sig(struct evloop *ev, int signo, void *arg)
{
	struct counter *c = arg;

	c->n = signo;
	ev_stop(ev);
}

static void fire_usr1(struct evloop *ev, void *arg)
{
	(void)ev, (void)arg;
	kill(getpid(), SIGUSR1);
}

static void test_signal_through_signalfd(void **state)
{
	struct evloop *ev = ev_new();
	struct counter c = {0};
	int sigs[] = {SIGUSR1};
	struct ev_handle *h;

	(void)state;
	h = ev_add_signals(ev, sigs, 1, on_sig, &c);
	assert_non_null(h);
	assert_non_null(ev_add_timer(ev, 5, 0, fire_usr1, NULL));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(c.n, SIGUSR1);
	ev_del(ev, h); /* unblocks SIGUSR1 again */
	ev_free(ev);
}

/* A callback removes another handle whose event is already pending in the same batch: the
 * removed handle's callback must not run. Two pipes, both readable before the loop starts (one
 * epoll batch); fd handles, which the loop dispatches without reading anything itself, so only
 * its check of a handle deleted in the batch keeps the second callback from running. */
struct pair_end {
	int *n;
	struct ev_handle **self, **other;
};

static void kill_other(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct pair_end *p = arg;

	(void)fd, (void)events;
	(*p->n)++;
	ev_del(ev, *p->other);
	ev_del(ev, *p->self); /* (still readable: it would run again) */
	*p->other = *p->self = NULL;
}

static void test_delete_inside_callback(void **state)
{
	struct evloop *ev = ev_new();
	struct counter stop = {.stop_at = 1};
	struct ev_handle *ha, *hb;
	int a[2], b[2], n = 0;
	struct pair_end pa = {&n, &ha, &hb}, pb = {&n, &hb, &ha};

	(void)state;
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	assert_non_null(ha = ev_add_fd(ev, a[0], EPOLLIN, kill_other, &pa));
	assert_non_null(hb = ev_add_fd(ev, b[0], EPOLLIN, kill_other, &pb));
	assert_non_null(ev_add_timer(ev, 50, 0, tick, &stop));
	assert_int_equal(ev_run(ev), 0);
	/* whichever ran first deleted the other, whose event was in the same batch */
	assert_int_equal(n, 1);
	ev_free(ev);
	close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timer_repeats),
	    cmocka_unit_test(test_timer_stopped),
	    cmocka_unit_test(test_fd_readable),
	    cmocka_unit_test(test_signal_through_signalfd),
	    cmocka_unit_test(test_delete_inside_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
