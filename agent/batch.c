/* batch.c - see batch.h. */
#include "batch.h"

#include <errno.h>
#include <libnftnl/common.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>

int batch_init(struct batch *bt, uint32_t seq, size_t elems)
{
	memset(bt, 0, sizeof(*bt));
	bt->cap = 64 * 1024 + elems * 64;
	bt->buf = malloc(bt->cap * 2); /* libmnl: room for one message past the limit */
	if (!bt->buf)
		return -ENOMEM;
	bt->b = mnl_nlmsg_batch_start(bt->buf, bt->cap);
	bt->first_seq = bt->seq = seq;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	mnl_nlmsg_batch_next(bt->b);
	return 0;
}

void batch_free(struct batch *bt)
{
	if (bt->b)
		mnl_nlmsg_batch_stop(bt->b);
	free(bt->buf);
	memset(bt, 0, sizeof(*bt));
}

struct nlmsghdr *batch_msg(struct batch *bt, uint16_t type, uint16_t flags)
{
	bt->acks++;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET, flags | NLM_F_ACK, bt->seq++);
}

void batch_next(struct batch *bt)
{
	if (!mnl_nlmsg_batch_next(bt->b))
		bt->oom = 1; /* estimate too small: refuse rather than send a truncated batch */
}

int batch_end(struct batch *bt)
{
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	mnl_nlmsg_batch_next(bt->b);
	return bt->oom ? -E2BIG : 0;
}

const void *batch_data(const struct batch *bt, size_t *len)
{
	*len = mnl_nlmsg_batch_size(bt->b);
	return mnl_nlmsg_batch_head(bt->b);
}
