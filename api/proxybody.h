/* proxybody.h - a proxy as the API takes it: a JSON body checked and made canonical, and a CSV
 * import's row made into such a body. Pure: no DB, no request (fuzz_proxybody). */
#ifndef API_PROXYBODY_H
#define API_PROXYBODY_H

#include "csv.h"
#include "http.h"

#define PROXY_EXPECTED_MAX 32 /* addresses and networks in a proxy's expected_exit */

/* A proxy body (POST, PUT, or PATCH when partial): fields, types, values; host and
 * expected_exit rewritten to their canonical form; a host that is an address where no proxy may
 * be (net_dest_refused, given refuse: the LAN; NULL: proxy_allow_local) refused. 0, or -1 with
 * the reason in err. */
struct net_lan;
int proxy_body_check(json_t *b, int partial, const struct net_lan *refuse, char *err, size_t errlen);

/* The columns of a proxy CSV file (export and import). */
enum {
	PROXY_COL_NAME,
	PROXY_COL_TYPE,
	PROXY_COL_HOST,
	PROXY_COL_PORT,
	PROXY_COL_USER,
	PROXY_COL_PASS,
	PROXY_COL_EXIT,
	PROXY_NCOLS
};
extern const char *const proxy_col_names[PROXY_NCOLS];
/* A row of a proxy CSV file as a body for proxy_body_check: col[c] is column c's field (-1: not
 * in the file); empty optional fields left out, expected_exit split at spaces, commas and
 * semicolons, the formula guard taken off. NULL with the reason in err (a port that is not a
 * number, text that is not UTF-8). */
json_t *proxy_csv_body(const struct csv_row *row, const int col[PROXY_NCOLS], char *err, size_t errlen);

#endif
