/* destfail.c - see destfail.h. */
#include "destfail.h"

#include <string.h>

int destfail_init(struct destfail *d)
{
	memset(d->s, 0, sizeof(d->s));
	return -pthread_mutex_init(&d->lock, NULL);
}

void destfail_fini(struct destfail *d)
{
	pthread_mutex_destroy(&d->lock);
}

static struct destfail_slot *slot_of(struct destfail *d, int64_t proxy_id)
{
	return &d->s[(uint64_t)proxy_id & (DESTFAIL_SLOTS - 1)];
}

int destfail_failed(struct destfail *d, int64_t proxy_id, uint64_t dst, uint64_t now)
{
	struct destfail_slot *s = slot_of(d, proxy_id);
	unsigned n, w = 0;
	int spread = 0;

	pthread_mutex_lock(&d->lock);
	n = atomic_load(&s->n);
	if (s->proxy_id != proxy_id) { /* another proxy's slot (or a new one): start over */
		s->proxy_id = proxy_id;
		n = 0;
	}
	for (unsigned i = 0; i < n; i++) /* keep those within the window, this destination aside */
		if ((s->at[i] > now || now - s->at[i] < DESTFAIL_WINDOW_MS) && s->dst[i] != dst) {
			/* (another worker's clock may be a little ahead of this one's) */
			s->dst[w] = s->dst[i];
			s->at[w++] = s->at[i];
		}
	s->dst[w] = dst;
	s->at[w++] = now;
	if (w >= DESTFAIL_SPREAD) {
		spread = 1;
		w = 0;
	}
	atomic_store(&s->n, w);
	pthread_mutex_unlock(&d->lock);
	return spread;
}

void destfail_ok(struct destfail *d, int64_t proxy_id)
{
	struct destfail_slot *s = slot_of(d, proxy_id);

	if (atomic_load(&s->n) == 0)
		return;
	pthread_mutex_lock(&d->lock);
	if (s->proxy_id == proxy_id)
		atomic_store(&s->n, 0);
	pthread_mutex_unlock(&d->lock);
}
