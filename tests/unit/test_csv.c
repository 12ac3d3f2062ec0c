/* test_csv.c - the CSV reader's limits: a field of CSV_MAX_FIELD bytes (one more only as a
 * formula guard), a row of CSV_MAX_ROW (guards not counted, so what csv_write_field() writes
 * of a parsed row parses again), 8 fields; quotes, line breaks in quotes, a BOM, CRLF. */
#include "testlib.h"

#include "../../api/csv.h"

/* A line of fields of the given lengths, each of 'x' (or starting with '=' when eq). */
static char *line_of(const size_t *len, int n, int eq)
{
	size_t total = 2;
	char *b, *p;

	for (int i = 0; i < n; i++)
		total += len[i] + 1;
	p = b = malloc(total);
	assert_non_null(b);
	for (int i = 0; i < n; i++) {
		memset(p, 'x', len[i]);
		if (eq && len[i])
			*p = '=';
		p += len[i];
		*p++ = i + 1 < n ? ',' : '\n';
	}
	*p = '\0';
	return b;
}

static int parse(const char *s, struct csv_row **rows, size_t *n, char *err)
{
	return csv_parse(s, strlen(s), rows, n, err, 200);
}

static void test_field_limit(void **state)
{
	size_t len[1] = {CSV_MAX_FIELD};
	struct csv_row *rows;
	size_t n;
	char err[200], *b;

	(void)state;
	b = line_of(len, 1, 0);
	assert_int_equal(parse(b, &rows, &n, err), 0);
	assert_int_equal(strlen(rows[0].field[0]), CSV_MAX_FIELD);
	assert_string_equal(rows[0].field[1], ""); /* past n: empty */
	free(rows);
	free(b);
	len[0] = CSV_MAX_FIELD + 1;
	b = line_of(len, 1, 0);
	assert_int_equal(parse(b, &rows, &n, err), -EINVAL);
	assert_non_null(strstr(err, "a field longer than 1536 bytes"));
	b[0] = '\'';
	b[1] = '='; /* '=xxx: the guard may stand beyond the limit */
	assert_int_equal(parse(b, &rows, &n, err), 0);
	assert_int_equal(strlen(csv_unformula(rows[0].field[0])), CSV_MAX_FIELD);
	free(rows);
	free(b);
}

static void test_row_limit(void **state)
{
	size_t two[2] = {CSV_MAX_ROW / 2, CSV_MAX_ROW / 2}, over[2] = {CSV_MAX_ROW / 2, CSV_MAX_ROW / 2 + 1};
	struct csv_row *rows, *again;
	size_t n, n2, len;
	char err[200], *b, *out = NULL;
	FILE *f;

	(void)state;
	b = line_of(two, 2, 0);
	assert_int_equal(parse(b, &rows, &n, err), 0);
	free(rows);
	free(b);
	b = line_of(over, 2, 0);
	assert_int_equal(parse(b, &rows, &n, err), -EINVAL);
	assert_non_null(strstr(err, "a row longer than 2304 bytes"));
	free(b);
	/* a full row whose fields start with '=': written back each gets its guard, and the row
	 * still parses (the guards do not count) */
	b = line_of(two, 2, 1);
	assert_int_equal(parse(b, &rows, &n, err), 0);
	assert_non_null(f = open_memstream(&out, &len));
	csv_write_field(f, rows[0].field[0]);
	fputc(',', f);
	csv_write_field(f, rows[0].field[1]);
	fputc('\n', f);
	fclose(f);
	assert_int_equal(strlen(out), CSV_MAX_ROW + 4); /* two guards, the comma, the newline */
	assert_int_equal(csv_parse(out, len, &again, &n2, err, sizeof(err)), 0);
	assert_string_equal(csv_unformula(again[0].field[0]), rows[0].field[0]);
	assert_string_equal(csv_unformula(again[0].field[1]), rows[0].field[1]);
	free(again);
	free(rows);
	free(out);
	free(b);
}

static void test_fields_and_quotes(void **state)
{
	static const char text[] = "\xef\xbb\xbf"
				   "a,\"b \"\"quoted\"\", with, commas\",\"two\nlines\",,e,f,g,h\r\n"
				   "\n"
				   "last,row";
	struct csv_row *rows;
	size_t n;
	char err[200];

	(void)state;
	assert_int_equal(parse(text, &rows, &n, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].n, 8);
	assert_string_equal(rows[0].field[0], "a"); /* the BOM is not part of it */
	assert_string_equal(rows[0].field[1], "b \"quoted\", with, commas");
	assert_string_equal(rows[0].field[2], "two\nlines");
	assert_string_equal(rows[0].field[3], "");
	assert_string_equal(rows[0].field[7], "h");
	assert_int_equal(rows[1].line, 4);
	assert_int_equal(rows[1].n, 2);
	assert_string_equal(rows[1].field[1], "row");
	free(rows);
	assert_int_equal(parse("1,2,3,4,5,6,7,8,9\n", &rows, &n, err), -EINVAL);
	assert_non_null(strstr(err, "more than 8 fields"));
	assert_int_equal(parse("a,\"open\n", &rows, &n, err), -EINVAL);
	assert_non_null(strstr(err, "unterminated"));
}

/* Bytes that are not UTF-8 (a Latin-1 export, say) refuse the file, naming the line: stored,
 * such a label broke the mapping's JSON and the HA snapshot. UTF-8 of every length passes. */
static void test_not_utf8(void **state)
{
	struct csv_row *rows;
	size_t n;
	char err[200];

	(void)state;
	assert_int_equal(
	    parse("client_ip,proxy,label\n10.0.0.5,p1,caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n", &rows, &n, err), 0);
	assert_string_equal(rows[1].field[2], "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	free(rows);
	assert_int_equal(parse("client_ip,proxy,label\n10.0.0.5,p1,ok\n10.0.0.6,p1,caf\xe9\n", &rows, &n, err),
			 -EINVAL);
	assert_non_null(strstr(err, "line 3: not UTF-8"));
	assert_null(rows);
	assert_int_equal(parse("a,\"x\ny\xff\"\n", &rows, &n, err), -EINVAL); /* inside quotes too */
	assert_non_null(strstr(err, "line 2: not UTF-8"));
}

/* A header's columns: each known one found, an unknown one named with the known ones, one twice */
static void test_columns(void **state)
{
	static const char *const names[] = {"client_ip", "proxy", "label"};
	struct csv_row *rows;
	size_t n;
	char err[200];
	int col[3];

	(void)state;
	assert_int_equal(parse("label,client_ip\n", &rows, &n, err), 0);
	assert_int_equal(csv_columns(&rows[0], names, 3, col, err, sizeof(err)), 0);
	assert_int_equal(col[0], 1);
	assert_int_equal(col[1], -1);
	assert_int_equal(col[2], 0);
	free(rows);
	assert_int_equal(parse("\nclient_ip,porxy\n", &rows, &n, err), 0);
	assert_int_equal(csv_columns(&rows[0], names, 3, col, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2: unknown column 'porxy' (client_ip, proxy, label)");
	free(rows);
	assert_int_equal(parse("proxy,client_ip,proxy\n", &rows, &n, err), 0);
	assert_int_equal(csv_columns(&rows[0], names, 3, col, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: column 'proxy' appears twice");
	free(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_field_limit),	      cmocka_unit_test(test_row_limit),
	    cmocka_unit_test(test_fields_and_quotes), cmocka_unit_test(test_not_utf8),
	    cmocka_unit_test(test_columns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
