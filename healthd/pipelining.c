/* pipelining.c - see pipelining.h. */
#include "pipelining.h"

#include "log.h"
#include "store.h"

/* Store what a capability probe found (or 0 when it must be found again) and tell the forwarder. */
static void set_capability(struct healthd *h, struct target *t, int early, int v)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id};
	int *cur = early ? &t->early : &t->pipelining;

	if (*cur == v) {
		t->cap_retry[early] = 0;
		return;
	}
	if (store_capability(h, t->id, early, v) < 0) { /* (busy: a reload's read open, say) again at the tick */
		t->cap_retry[early] = v + 1;
		return;
	}
	t->cap_retry[early] = 0;
	*cur = v;
	notify_send(h->d->nt, "forwarder", &m);
	h->api_dirty = 1;
}

void pipelining_retry(struct healthd *h, struct target *t)
{
	for (int early = 0; early < 2; early++)
		if (t->cap_retry[early])
			set_capability(h, t, early, t->cap_retry[early] - 1);
}

/* Back to lock-step and the request alone until the probes succeed again. */
void pipelining_forget(struct healthd *h, struct target *t, const char *why)
{
	probe_cancel(t->pipe_probe);
	probe_cancel(t->early_probe);
	t->pipe_probe = t->early_probe = NULL;
	t->pipe_tested = t->early_tested = 0;
	if (t->pipelining || t->early)
		log_info("proxy %lld (%s): %s: lock-step SOCKS5 handshakes and the request alone until tested again",
			 (long long)t->id, t->name, why);
	set_capability(h, t, 0, 0);
	set_capability(h, t, 1, 0);
}

static const struct net_http_url *test_url(struct healthd *h, struct target *t)
{
	int n = t->own_url ? t->n_urls : h->n_urls;

	return n ? &(t->own_url ? t->urls : h->urls)[t->ok_url_idx % n] : NULL;
}

static void on_early_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		if (t->early_probe != p)
			continue;
		t->early_probe = NULL;
		t->early_tested = 1;
		log_info("proxy %lld (%s): %s the client's first bytes with the request (%s)", (long long)t->id,
			 t->name, r->error == PROBE_OK ? "takes" : "does not take", r->reason);
		set_capability(h, t, 1, r->error == PROBE_OK);
		return;
	}
}

/* The GET right behind the request, ahead of the reply (the handshake as the forwarder does it:
 * pipelined where that was found to work). Over a plain http URL only. */
static void early_test(struct healthd *h, struct target *t)
{
	const struct net_http_url *url = test_url(h, t);

	if (t->early_tested || t->early_probe || !h->params.pipeline_check || !url || !t->addr_ok)
		return;
	if (url->tls) { /* the first bytes would be TLS's: not tested, the request goes alone */
		t->early_tested = 1;
		return;
	}
	t->early_probe = probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass,
				     PROBE_EARLY | (t->pipelining ? PROBE_PIPELINED : 0), url, h->health_cred,
				     h->params.timeout_ms, on_early_probe_done, h);
}

static void on_pipe_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		if (t->pipe_probe != p)
			continue;
		t->pipe_probe = NULL;
		t->pipe_tested = 1;
		log_info("proxy %lld (%s): %s pipelined SOCKS5 handshakes (%s)", (long long)t->id, t->name,
			 r->error == PROBE_OK ? "takes" : "does not take", r->reason);
		set_capability(h, t, 0, r->error == PROBE_OK);
		early_test(h, t);
		return;
	}
}

/* After a good probe of a proxy not yet tested: the pipelined probe (SOCKS5), then the early one. */
void pipelining_test(struct healthd *h, struct target *t)
{
	const struct net_http_url *url = test_url(h, t);

	if (t->pipe_probe || t->early_probe || !h->params.pipeline_check || !url || !t->addr_ok)
		return;
	if (t->type != UPSTREAM_SOCKS5 || t->pipe_tested) {
		early_test(h, t);
		return;
	}
	t->pipe_probe = probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass, PROBE_PIPELINED, url, h->health_cred,
				    h->params.timeout_ms, on_pipe_probe_done, h);
}

void pipelining_apply_setting(struct healthd *h)
{
	if (!h->params.pipeline_check)
		for (size_t i = 0; i < h->n; i++)
			pipelining_forget(h, &h->t[i], "socks_pipelining is off");
}
