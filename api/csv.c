/* csv.c - see csv.h. */
#include "csv.h"

#include "parse.h"
#include "password.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int csv_parse(const char *buf, size_t len, struct csv_row **rows, size_t *n, char *err, size_t errlen)
{
	size_t cap = 0, i = 0, flen = 0, pos = 0, guards = 0;
	struct csv_row *out = NULL, *row = NULL;
	int line = 1, quoted = 0, after_quote = 0;

	*rows = NULL;
	*n = 0;
	if ((i = utf8_invalid_at(buf, len)) < len) { /* jansson, SQLite's text and the UI take only UTF-8 */
		for (size_t k = 0; k < i; k++)
			line += buf[k] == '\n';
		snprintf(err, errlen, "line %d: not UTF-8 text (save the file as UTF-8)", line);
		return -EINVAL;
	}
	i = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 BOM from spreadsheets */
		i = 3;
	for (; i <= len; i++) {
		char c = i < len ? buf[i] : '\n'; /* the end closes the last row */
		int eol = !quoted && (c == '\n' || (c == '\r' && i + 1 < len && buf[i + 1] == '\n'));

		if (i < len && c == '\0') {
			snprintf(err, errlen, "line %d: NUL byte", line);
			goto fail;
		}
		if (!row) {
			if (eol) { /* empty line */
				if (c == '\r')
					i++;
				line++;
				continue;
			}
			if (*n == CSV_MAX_ROWS) {
				snprintf(err, errlen, "more than %d rows", CSV_MAX_ROWS);
				goto fail;
			}
			if (*n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct csv_row *p = secret_grow(out, cap * sizeof(*p), nc * sizeof(*p)); /* passwords */
				if (!p) {
					snprintf(err, errlen, "out of memory");
					goto fail;
				}
				out = p;
				cap = nc;
			}
			row = &out[(*n)++];
			memset(row, 0, sizeof(*row));
			row->line = line;
			row->n = 1;
			flen = 0;
			pos = 0;
			guards = 0;
		}
		if (quoted) {
			if (i == len) {
				snprintf(err, errlen, "line %d: unterminated quoted field", row->line);
				goto fail;
			}
			if (c == '"') {
				if (i + 1 < len && buf[i + 1] == '"') {
					i++; /* "" is a quote */
				} else {
					quoted = 0;
					after_quote = 1;
					continue;
				}
			}
			if (c == '\n')
				line++;
		} else if (c == '"') {
			if (flen != 0 || after_quote) {
				snprintf(err, errlen, "line %d: a quote inside an unquoted field", line);
				goto fail;
			}
			quoted = 1;
			continue;
		} else if (c == ',' || eol) {
			const char *f = row->text + row->off[row->n - 1];
			row->text[pos++] = '\0';
			if (flen > CSV_MAX_FIELD && csv_unformula(f) == f) {
				/* only the formula guard ' may stand beyond the limit */
				snprintf(err, errlen, "line %d: a field longer than %d bytes", row->line,
					 CSV_MAX_FIELD);
				goto fail;
			}
			guards += csv_unformula(f) != f;
			if (pos - (size_t)row->n - guards > CSV_MAX_ROW) { /* its bytes: less the NULs and guards */
				snprintf(err, errlen, "line %d: a row longer than %d bytes", row->line, CSV_MAX_ROW);
				goto fail;
			}
			after_quote = 0;
			flen = 0;
			if (eol) {
				if (c == '\r')
					i++;
				line++;
				row = NULL;
				continue;
			}
			if (row->n == CSV_MAX_FIELDS) {
				snprintf(err, errlen, "line %d: more than %d fields", line, CSV_MAX_FIELDS);
				goto fail;
			}
			row->off[row->n++] = (unsigned short)pos;
			continue;
		} else if (after_quote) {
			snprintf(err, errlen, "line %d: text after a closing quote", line);
			goto fail;
		}
		if (flen == (size_t)CSV_MAX_FIELD + 1) { /* one byte more for a formula guard ', checked at the end */
			snprintf(err, errlen, "line %d: a field longer than %d bytes", row->line, CSV_MAX_FIELD);
			goto fail;
		}
		if (pos - (size_t)(row->n - 1) >= CSV_MAX_ROW + CSV_MAX_FIELDS) { /* room for a guard a field */
			snprintf(err, errlen, "line %d: a row longer than %d bytes", row->line, CSV_MAX_ROW);
			goto fail;
		}
		row->text[pos++] = c;
		flen++;
	}
	for (size_t r = 0; r < *n; r++) /* the rows are where they stay: now the fields can point */
		for (int k = 0; k < CSV_MAX_FIELDS; k++)
			out[r].field[k] = k < out[r].n ? out[r].text + out[r].off[k] : "";
	*rows = out;
	return 0;
fail:
	if (out) /* rows may hold proxies' passwords */
		explicit_bzero(out, cap * sizeof(*out));
	free(out);
	*n = 0;
	return -EINVAL;
}

/* Would a spreadsheet take this cell for a formula (or is it one we guarded already)? */
static int needs_guard(const char *s)
{
	if (s[0] == '\'')
		return needs_guard(s + 1); /* '=..., ''=...: guard once more, so the round trip is exact */
	return s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

void csv_write_field(FILE *f, const char *s)
{
	/* a cell a spreadsheet would run as a formula is written as text, with a leading '
	 * (csv_unformula() takes it away again on import) */
	int guard = needs_guard(s);

	if (!strpbrk(s, ",\"\r\n")) {
		if (guard)
			fputc('\'', f);
		fputs(s, f);
		return;
	}
	fputc('"', f);
	if (guard)
		fputc('\'', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

const char *csv_unformula(const char *s)
{
	return s[0] == '\'' && needs_guard(s + 1) ? s + 1 : s;
}

int csv_columns(const struct csv_row *header, const char *const *names, int n, int *col, char *err, size_t errlen)
{
	for (int c = 0; c < n; c++)
		col[c] = -1;
	for (int k = 0; k < header->n; k++) {
		int c = 0;

		while (c < n && strcmp(header->field[k], names[c]) != 0)
			c++;
		if (c == n) {
			size_t o = (size_t)snprintf(err, errlen, "line %d: unknown column '%.64s' (", header->line,
						    header->field[k]);
			for (int i = 0; i < n && o < errlen; i++)
				o += (size_t)snprintf(err + o, errlen - o, "%s%s", names[i], i + 1 < n ? ", " : ")");
			return -EINVAL;
		}
		if (col[c] >= 0) {
			snprintf(err, errlen, "line %d: column '%s' appears twice", header->line, names[c]);
			return -EINVAL;
		}
		col[c] = k;
	}
	return 0;
}
