/* evloop.h - a tiny epoll loop: fd events, monotonic timers (timerfd), signals (signalfd). */
#ifndef PGW_EVLOOP_H
#define PGW_EVLOOP_H

#include <signal.h>
#include <sys/epoll.h> /* EPOLLIN etc. for ev_add_fd */
#include <stdint.h>

struct evloop;
struct ev_handle;

typedef void (*ev_fd_cb)(struct evloop *ev, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(struct evloop *ev, void *arg);
typedef void (*ev_signal_cb)(struct evloop *ev, int signo, void *arg);

struct evloop *ev_new(void);
/* Frees the loop and every handle still registered (timer and signal fds closed). */
void ev_free(struct evloop *ev);

/* Watch fd for events (EPOLLIN...). The loop does not own fd. Returns a handle or NULL. */
struct ev_handle *ev_add_fd(struct evloop *ev, int fd, uint32_t events, ev_fd_cb cb, void *arg);
int ev_mod_fd(struct evloop *ev, struct ev_handle *h, uint32_t events);
/* Hand an fd's handle to another owner: its next events go to cb(arg). No system call. */
void ev_set_cb(struct ev_handle *h, ev_fd_cb cb, void *arg);
/* Timer on CLOCK_MONOTONIC: first after first_ms, then every interval_ms (0: once). */
struct ev_handle *ev_add_timer(struct evloop *ev, uint64_t first_ms, uint64_t interval_ms, ev_timer_cb cb, void *arg);
int ev_timer_set(struct ev_handle *h, uint64_t first_ms, uint64_t interval_ms);
/* The timer fires no more until set again. */
int ev_timer_stop(struct ev_handle *h);
/* Block the given signals and deliver them through a signalfd. One per loop. */
struct ev_handle *ev_add_signals(struct evloop *ev, const int *signals, int n, ev_signal_cb cb, void *arg);
/* Remove and free a handle (safe to call from inside any callback). */
void ev_del(struct evloop *ev, struct ev_handle *h);
/* The same for an fd the caller closes right after (and holds no other descriptor of): closing
 * it takes it out of the epoll set, so no system call here. */
void ev_forget(struct evloop *ev, struct ev_handle *h);

/* Run until ev_stop(); 0, or -errno if epoll failed. */
int ev_run(struct evloop *ev);
void ev_stop(struct evloop *ev);
/* Milliseconds, microseconds on CLOCK_MONOTONIC. */
uint64_t ev_now_ms(void);
uint64_t ev_now_us(void);

#endif
