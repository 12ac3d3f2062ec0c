/* nft.h - table inet pgw in the kernel, through libnftnl/libmnl. Every change is ONE netlink
 * batch (one nf_tables transaction): a full rebuild deletes and re-creates the table inside
 * the same batch, so there is never a moment without rules. Every ack is read and checked. */
#ifndef AGENT_NFT_H
#define AGENT_NFT_H

#include "desired.h"

#include <stddef.h>

struct nft;

struct nft *nft_open(char *err, size_t errlen);
void nft_close(struct nft *n);

/* Replace the whole table with the one d describes. 0, or -errno with the kernel's reason. */
int nft_apply_full(struct nft *n, const struct desired *d, char *err, size_t errlen);
/* Move clients between the sets (active, blocked, udp; both families). One batch. */
int nft_apply_elements(struct nft *n, const struct set_delta *d, char *err, size_t errlen);
/* Every granting set of table inet pgw flushed, each in its own transaction (a table of an older
 * version may lack some: one missing set does not keep the others): 0, -ENOENT (none of them
 * there), or -errno with the reason in err. The clients that were in the active sets go into
 * granted (sorted; the caller frees granted->addr, also on failure). */
int nft_flush_grants(struct nft *n, struct addrset *granted, char *err, size_t errlen);
/* 1 when our table is in the kernel as we made it (awake, its active4 set there, its forward
 * chain hooked with policy drop), 0 when not, -errno on error. */
int nft_table_present(struct nft *n);
/* The pairs the MAC binding refused (sets spoof4, spoof6): cb for each with its packets so far.
 * 0 (also when there are no such sets), or -errno. */
typedef void (*nft_spoof_cb)(const uint8_t mac[6], const struct net_ip *ip, uint64_t packets, void *arg);
int nft_spoof_list(struct nft *n, nft_spoof_cb cb, void *arg);
/* Delete the table (uninstall). 0 also when there was none. */
int nft_flush(struct nft *n, char *err, size_t errlen);

/* nf_tables' events (NFNLGRP_NFTABLES), as far as another program changed table inet pgw: a
 * `flush ruleset` (nftables.service's start, reload and stop), the table re-added (dormant, say),
 * a chain, rule, set or element made or deleted in it. A socket filter keeps n's own changes out,
 * so the agent's own rebuilds cannot flood it. */
struct nft_watch;
struct nft_watch *nft_watch_open(const struct nft *n, char *err, size_t errlen);
int nft_watch_fd(const struct nft_watch *w);
/* Read what is queued: 1 when table inet pgw was changed by someone else, 0 when not, -ENOBUFS
 * when events were lost (the caller looks at the table itself). */
int nft_watch_drain(struct nft_watch *w);
void nft_watch_close(struct nft_watch *w);

#endif
