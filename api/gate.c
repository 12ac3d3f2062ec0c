/* gate.c - see gate.h. Each HTTP worker thread has its own reply socket, api-<tid>. */
#include "gate.h"

#include "http.h"
#include "log.h"
#include "net.h"
#include "notify.h"
#include "settings.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The reply socket of the calling thread, closed (and its file removed) when the thread ends. */
static pthread_key_t reply_key;
static pthread_once_t reply_once = PTHREAD_ONCE_INIT;

static void reply_free(void *p)
{
	notify_close(p);
}
static void reply_make_key(void)
{
	pthread_key_create(&reply_key, reply_free);
}

static struct notify *reply_socket(const struct pgw_config *cfg)
{
	char name[NOTIFY_NAME_MAX], err[256];
	struct notify *tls_reply;

	pthread_once(&reply_once, reply_make_key);
	tls_reply = pthread_getspecific(reply_key);
	if (!tls_reply) {
		snprintf(name, sizeof(name), "api-%ld", (long)syscall(SYS_gettid));
		tls_reply = notify_open(cfg->run_dir, name, err, sizeof(err));
		if (tls_reply)
			pthread_setspecific(reply_key, tls_reply);
		else /* (tried again at the next gate) */
			log_error("health gate: cannot open a socket for pgw-healthd's answers: %s", err);
	}
	return tls_reply;
}

int gate_check_many(const struct pgw_config *cfg, const int64_t *ids, size_t k, unsigned wait_ms, unsigned total_ms,
		    json_t **results, int *st)
{
	struct notify *tls_reply = reply_socket(cfg);
	struct notify_msg *res = calloc(k ? k : 1, sizeof(*res));
	int r = !res	     ? -ENOMEM
		: !tls_reply ? -EIO
			     : notify_check_many(tls_reply, ids, k, NOTIFY_CHECK_WINDOW, wait_ms, total_ms, res, st);

	for (size_t i = 0; i < k; i++) {
		results[i] = NULL;
		if (r < 0 || st[i] < 0)
			continue;
		if (st[i])
			results[i] = json_pack("{s:I, s:s, s:i, s:s}", "proxy_id", (json_int_t)ids[i], "status", "up",
					       "latency_ms", res[i].value, "exit_ip", res[i].text);
		else
			results[i] = json_pack("{s:I, s:s, s:s}", "proxy_id", (json_int_t)ids[i], "status", "down",
					       "error", res[i].text);
		if (!results[i]) /* a check without its result: none passes (a down one would go unseen) */
			r = -ENOMEM;
	}
	for (size_t i = 0; r == -ENOMEM && i < k; i++) {
		json_decref(results[i]);
		results[i] = NULL;
	}
	free(res);
	return r;
}

int gate_check(const struct pgw_config *cfg, int64_t proxy_id, unsigned wait_ms, json_t **result)
{
	int st, r = gate_check_many(cfg, &proxy_id, 1, wait_ms, wait_ms, result, &st);

	return r < 0 ? r : st;
}

unsigned gate_wait_ms(sqlite3 *db, const struct pgw_config *cfg)
{
	char urls[SETTINGS_VALUE_MAX];
	struct net_http_url u[NET_HTTP_URLS_MAX];
	unsigned steps = 0;
	int n;

	/* a probe's steps each get health_timeout: connect, handshake, (TLS,) response; a failure at
	 * the destination tries the next health URL (connect, handshake again, TLS, response) */
	settings_str(db, cfg, "health_url", urls, sizeof(urls));
	n = net_http_url_list_parse(urls, u, NET_HTTP_URLS_MAX);
	for (int i = 0; i < n; i++)
		steps += (i ? 2u : 3u) + (u[i].tls ? 1u : 0u);
	if (n <= 0)
		steps = 3; /* the settings refuse such a value: the default's */
	return settings_uint(db, cfg, "health_timeout") * 1000u * steps + 1000u;
}

int reply_gate_unavailable(struct req *r, int err)
{
	if (err == -ENOENT)
		return reply_error(r, 503, "unavailable", "pgw-healthd is not running: the proxy cannot be checked");
	if (err == -EIO)
		return reply_error(
		    r, 503, "unavailable",
		    "pgw-api cannot open a socket for pgw-healthd's answer (its log says why): the proxy "
		    "cannot be checked");
	if (err == -ENOMEM)
		return reply_error(r, 500, "internal", "out of memory");
	return reply_error(r, 503, "unavailable", "pgw-healthd did not answer in time");
}
