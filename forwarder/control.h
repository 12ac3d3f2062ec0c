/* control.h - the forwarder's control socket (fwdctl.h): a thread that answers pgw-api's and
 * pgwctl's questions about open connections and closes connections on an admin's request. */
#ifndef FWD_CONTROL_H
#define FWD_CONTROL_H

#include "relay.h"

#include <stddef.h>
#include <stdio.h>

struct control;
struct fwd_workers;

/* Listen on PGW_RUN_DIR/forwarder.ctl; stats(stats_arg, out) writes the answer to "stats" (from
 * this thread: what it reads must be safe to read from any thread). 0, or -1 with the reason in
 * err (the forwarder runs on without it: the API then has no stats nor connections from it). */
int control_start(struct fwd_shared *sh, struct fwd_workers *ws, void (*stats)(void *arg, FILE *out), void *stats_arg,
		  struct control **out, char *err, size_t errlen);
void control_stop(struct control *c);
/* How many "stats" answers it has given (0 for NULL). */
unsigned long control_served(struct control *c);

/* Answer one request line: a malloc'ed JSON document. */
char *control_answer(struct control *c, const char *line, size_t len, size_t *out_len);

#endif
