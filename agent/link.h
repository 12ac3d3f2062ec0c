/* link.h - the interfaces the rules name, watched through rtnetlink link events: a NIC
 * renamed or removed after boot is noticed at once (the rules keep blocking; see nft.c's
 * invariant), reported, and the report clears by itself when the interface is back. */
#ifndef AGENT_LINK_H
#define AGENT_LINK_H

#include <stddef.h>

struct link_watch;

/* A socket subscribed to RTMGRP_LINK; its fd becomes readable on any link change. */
struct link_watch *link_watch_open(char *err, size_t errlen);
int link_watch_fd(const struct link_watch *lw);
/* Read and discard whatever is queued (the agent re-checks the names it cares about). */
void link_watch_drain(struct link_watch *lw);
void link_watch_close(struct link_watch *lw);

/* 1 when an interface of that name exists now (in this network namespace), else 0. */
int link_present(const char *name);

#endif
