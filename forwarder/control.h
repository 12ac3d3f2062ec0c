/* control.h - the forwarder's control socket (fwdctl.h): a thread that answers pgw-api's and
 * pgwctl's questions about open connections and closes connections on an admin's request. */
#ifndef FWD_CONTROL_H
#define FWD_CONTROL_H

#include "relay.h"

#include <stddef.h>
#include <stdio.h>

struct control;
struct fwd_workers;

/* What the control thread asks the rest of the forwarder (from its thread: what they read must
 * be safe to read from any thread), each with arg:
 * - stats writes the answer to "stats";
 * - stalled answers "ping": NULL while every loop runs, else which stopped (a sentence). */
struct control_ops {
	void (*stats)(void *arg, FILE *out);
	const char *(*stalled)(void *arg);
	void *arg;
};

/* Listen on PGW_RUN_DIR/forwarder.ctl (ws: the workers whose connections "conns" and "close"
 * see). 0, or -1 with the reason in err (the forwarder runs on without it: the API then has no
 * stats nor connections from it, and `pgwctl ha check` fails). */
int control_start(struct fwd_shared *sh, struct fwd_workers *ws, const struct control_ops *ops, struct control **out,
		  char *err, size_t errlen);
void control_stop(struct control *c);
/* How many "stats" answers it has given (0 for NULL). */
unsigned long control_served(struct control *c);

/* Answer one request line: a malloc'ed JSON document. */
char *control_answer(struct control *c, const char *line, size_t len, size_t *out_len);

#endif
