/* csv.h - a strict RFC 4180 reader (pure: buffer in, rows out), a header's columns and a field
 * writer, for the CSV import and export of mappings and of proxies. */
#ifndef API_CSV_H
#define API_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_MAX_FIELDS 8
/* bytes: what the API takes fits a field (a proxy's 32 expected exits, 255-byte logins, a label
 * of 128 characters of up to 4 bytes), and a whole exported row fits CSV_MAX_ROW (the largest
 * proxy: 64 four-byte characters, socks5, 253, 65535, 255, 32 IPv6 exits: 2,182 bytes). Neither
 * counts a formula guard ' (csv_write_field() may add one to each field). */
#define CSV_MAX_FIELD 1536
#define CSV_MAX_ROW   2304
#define CSV_MAX_ROWS  10000

struct csv_row {
	int line; /* 1-based line where the row starts */
	int n;
	const char *field[CSV_MAX_FIELDS]; /* in text (each may carry the formula guard ' of
					    * csv_write_field() beyond CSV_MAX_FIELD); "" past n */
	unsigned short off[CSV_MAX_FIELDS];
	char text[CSV_MAX_ROW + 2 * CSV_MAX_FIELDS]; /* the fields, each with its guard and NUL */
};

/* Parse the whole buffer. 0 with *rows (caller frees) and *n, or -EINVAL with the line and
 * the reason in err (unterminated quote, text after a closing quote, too many fields, a field
 * or the file too long, a NUL byte, bytes that are not UTF-8). Empty lines are skipped. */
int csv_parse(const char *buf, size_t len, struct csv_row **rows, size_t *n, char *err, size_t errlen);
/* The columns a file's first row names, each one of names[0..n): col[c] is the field of names[c]
 * (-1 when absent). 0, or -EINVAL with the reason in err: a column not among them (the known
 * ones listed) or one named twice. */
int csv_columns(const struct csv_row *header, const char *const *names, int n, int *col, char *err, size_t errlen);
/* Write one field, quoted when it holds a comma, quote, CR or LF. */
void csv_write_field(FILE *f, const char *s);
/* A field as it was before csv_write_field() guarded it against spreadsheet formulas. */
const char *csv_unformula(const char *s);

#endif
