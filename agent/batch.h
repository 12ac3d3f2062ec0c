/* batch.h - one nf_tables transaction under construction: netlink messages appended to a
 * buffer between BATCH_BEGIN and BATCH_END, each asking for an ack. Built by ruleset.c, sent
 * (and every ack read) by nft.c, decoded by the unit test. */
#ifndef AGENT_BATCH_H
#define AGENT_BATCH_H

#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>

/* A batch under construction: messages are appended to buf; each one asks for an ack. */
struct batch {
	char *buf;
	size_t cap;
	struct mnl_nlmsg_batch *b;
	uint32_t first_seq, seq;
	unsigned acks;
	int oom;
};

/* Room for elems set elements; seq: the first sequence number. 0 or -ENOMEM. */
int batch_init(struct batch *bt, uint32_t seq, size_t elems);
void batch_free(struct batch *bt);
/* The header of the next message (type NFT_MSG_*, flags | NLM_F_ACK), then batch_next(). */
struct nlmsghdr *batch_msg(struct batch *bt, uint16_t type, uint16_t flags);
void batch_next(struct batch *bt);
/* Close the batch: 0, or -E2BIG when it outgrew its buffer (nothing may be sent). */
int batch_end(struct batch *bt);
/* The whole batch, once ended. */
const void *batch_data(const struct batch *bt, size_t *len);

#endif
