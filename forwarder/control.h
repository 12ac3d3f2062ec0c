/* control.h - the forwarder's control socket (fwdctl.h): a thread that answers pgw-api's and
 * pgwctl's questions about open connections and closes connections on an admin's request. */
#ifndef FWD_CONTROL_H
#define FWD_CONTROL_H

#include "relay.h"

#include <stddef.h>

struct control;
struct fwd_workers;

/* Listen on PGW_RUN_DIR/forwarder.ctl. 0, or -1 with the reason in err (the forwarder runs on
 * without it: the API then says the connections are unavailable). */
int control_start(struct fwd_shared *sh, struct fwd_workers *ws, struct control **out, char *err, size_t errlen);
void control_stop(struct control *c);

/* Answer one request line (exposed for the tests): a malloc'ed JSON document. */
char *control_answer(struct fwd_workers *ws, const char *line, size_t len, size_t *out_len);

#endif
