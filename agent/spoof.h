/* spoof.h - who the MAC binding refused: pgw-agent reads the kernel's spoof4/spoof6 sets (each
 * refused ether saddr . ip saddr pair with its packet counter), adds what is new to the DB
 * (table mac_spoof, 0021: the API shows it with the client) and logs it: the first time a pair
 * is seen, then at most once a minute while it goes on. */
#ifndef AGENT_SPOOF_H
#define AGENT_SPOOF_H

#include "desired.h"
#include "nft.h"

#include <sqlite3.h>

struct spoof_log;

struct spoof_log *spoof_open(void);
void spoof_close(struct spoof_log *s);
/* The table was rebuilt: the kernel's counters start from 0 again. */
void spoof_reset(struct spoof_log *s);
/* Read the sets, record and log what changed. bound: the bindings applied (for the log line). */
void spoof_poll(struct spoof_log *s, struct nft *n, sqlite3 *db, const struct bindset *bound);

#endif
