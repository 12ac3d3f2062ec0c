/* libFuzzer: CSV uploads are user input. Whatever parses must re-serialize and parse again to
 * the same rows (the export/import round trip, formula guard included: csv_unformula()). */
#include "../../api/csv.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_row *rows = NULL, *again = NULL;
	size_t n = 0, m = 0, len = 0;
	char err[128], *buf = NULL;
	FILE *f;

	if (csv_parse((const char *)data, size, &rows, &n, err, sizeof(err)) < 0)
		return 0;
	f = open_memstream(&buf, &len);
	fputs("\xef\xbb\xbf", f); /* like a spreadsheet export: the parser drops exactly one BOM */
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < rows[i].n; k++) {
			if (k)
				fputc(',', f);
			csv_write_field(f, csv_unformula(rows[i].field[k])); /* the value, as the import reads it */
		}
		fputc('\n', f);
	}
	fclose(f);
	assert(csv_parse(buf, len, &again, &m, err, sizeof(err)) == 0);
	/* rows of one empty field are written as empty lines, which are skipped */
	for (size_t i = 0, j = 0; i < n; i++) {
		if (rows[i].n == 1 && rows[i].field[0][0] == '\0')
			continue;
		assert(j < m && again[j].n == rows[i].n);
		for (int k = 0; k < rows[i].n; k++)
			assert(strcmp(csv_unformula(again[j].field[k]), csv_unformula(rows[i].field[k])) == 0);
		j++;
	}
	free(buf);
	free(rows);
	free(again);
	return 0;
}
