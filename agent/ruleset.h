/* ruleset.h - table inet pgw as nf_tables messages (see the ruleset in ruleset.c's header
 * comment and the invariant in docs/SECURITY.md). Builds into a batch; sends nothing. */
#ifndef AGENT_RULESET_H
#define AGENT_RULESET_H

#include "batch.h"
#include "desired.h"

#define NFT_TABLE	  "pgw"
#define RULESET_PROBE_SET "active4" /* nft_table_present() asks for it */

/* The whole table in one batch: add, delete and re-create it with its sets, elements, chains
 * and rules, so the kernel switches atomically. */
void ruleset_full(struct batch *bt, const struct desired *d);
/* Set element changes only: clients leave active4/active6 before anything is granted. */
void ruleset_elements(struct batch *bt, const struct addrset *add_active, const struct addrset *del_active,
		      const struct addrset *add_blocked, const struct addrset *del_blocked);
/* Delete the table (valid whether or not it exists). */
void ruleset_delete(struct batch *bt);

#endif
