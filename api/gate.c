/* gate.c - see gate.h. Each HTTP worker thread has its own reply socket, api-<tid>. */
#include "gate.h"

#include "http.h"
#include "notify.h"
#include "settings.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evloop.h"

/* The reply socket of the calling thread, closed (and its file removed) when the thread ends. */
static pthread_key_t reply_key;
static pthread_once_t reply_once = PTHREAD_ONCE_INIT;

static void reply_free(void *p) { notify_close(p); }
static void reply_make_key(void) { pthread_key_create(&reply_key, reply_free); }

int gate_check(const struct pgw_config *cfg, int64_t proxy_id, unsigned wait_ms, json_t **result)
{
	struct notify_msg req = { .type = NOTIFY_CHECK_REQUEST, .id = proxy_id }, res;
	char name[NOTIFY_NAME_MAX], err[256];
	uint64_t deadline = ev_now_ms() + wait_ms;
	int r;

	struct notify *tls_reply;

	*result = NULL;
	pthread_once(&reply_once, reply_make_key);
	tls_reply = pthread_getspecific(reply_key);
	if (!tls_reply) {
		snprintf(name, sizeof(name), "api-%ld", (long)syscall(SYS_gettid));
		tls_reply = notify_open(cfg->run_dir, name, err, sizeof(err));
		if (!tls_reply)
			return -EIO;
		pthread_setspecific(reply_key, tls_reply);
	}
	while (notify_recv(tls_reply, &res, NULL, 0) != -EAGAIN) /* stale answers from a timed-out ask */
		;
	r = notify_send(tls_reply, "healthd", &req);
	if (r < 0)
		return r == -EAGAIN ? -ETIMEDOUT : -ENOENT;
	for (;;) {
		uint64_t now = ev_now_ms();
		struct pollfd pfd = { .fd = notify_fd(tls_reply), .events = POLLIN };

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		if (notify_recv(tls_reply, &res, NULL, 0) == 0 && res.type == NOTIFY_CHECK_RESULT && res.id == proxy_id)
			break;
	}
	if (res.status)
		*result = json_pack("{s:I, s:s, s:i, s:s}", "proxy_id", (json_int_t)proxy_id, "status", "up", "latency_ms",
				    res.value, "exit_ip", res.text);
	else
		*result = json_pack("{s:I, s:s, s:s}", "proxy_id", (json_int_t)proxy_id, "status", "down", "error", res.text);
	return res.status ? 1 : 0;
}

unsigned gate_wait_ms(sqlite3 *db, const struct pgw_config *cfg)
{
	return settings_get_uint(db, "health_timeout", cfg->health_timeout_s) * 3000u + 1000u;
}

int reply_gate_unavailable(struct req *r, int err)
{
	if (err == -ENOENT)
		return reply_error(r, 503, "unavailable", "pgw-healthd is not running: the proxy cannot be checked");
	return reply_error(r, 503, "unavailable", "pgw-healthd did not answer in time");
}
