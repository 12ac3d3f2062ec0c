/* pgwctl settings - list, read and change the runtime settings (validated). */
#include "pgwctl.h"

#include "hastate.h"

#include "log.h"
#include "notify.h"
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cmd_settings(struct ctl *c, int argc, char **argv)
{
	char value[SETTINGS_VALUE_MAX], err[600], after[SETTINGS_VALUE_MAX * 2 + 16], esc[SETTINGS_VALUE_MAX * 2];
	const struct settings_key *keys = settings_keys();
	int r;

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		if (ctl_open(c) < 0)
			return CTL_FAIL;
		for (int i = 0; keys[i].key; i++) {
			if (settings_get(c->db, keys[i].key, value, sizeof(value)) < 0)
				snprintf(value, sizeof(value), "(unset)");
			printf("%-26s %-24s # %s\n", keys[i].key, value, keys[i].help);
		}
		return CTL_OK;
	}
	if (argc == 3 && strcmp(argv[1], "get") == 0) {
		if (settings_validate(argv[2], "", err, sizeof(err)) == -ENOENT) {
			fprintf(stderr, "pgwctl: %s (see pgwctl settings list)\n", err);
			return CTL_FAIL;
		}
		if (ctl_open(c) < 0)
			return CTL_FAIL;
		if (settings_get(c->db, argv[2], value, sizeof(value)) < 0) {
			fprintf(stderr, "pgwctl: %s is not set (run pgwctl migrate)\n", argv[2]);
			return CTL_FAIL;
		}
		printf("%s\n", value);
		return CTL_OK;
	}
	if (argc == 4 && strcmp(argv[1], "set") == 0) {
		if (settings_validate(argv[2], argv[3], err, sizeof(err)) < 0) {
			fprintf(stderr, "pgwctl: %s\n", err);
			return CTL_FAIL;
		}
		if (ctl_open(c) < 0 || (!ha_setting_is_local(argv[2]) && ctl_ha_writable(c) < 0))
			return CTL_FAIL;
		{
			const char *k = argv[2], *v = argv[3];
			if (settings_check_system(c->db, &k, &v, 1, err, sizeof(err)) < 0 ||
			    settings_check_login(c->db, &k, &v, 1, err, sizeof(err)) < 0) {
				fprintf(stderr, "pgwctl: %s\n", err);
				return CTL_FAIL;
			}
		}
		r = settings_set(c->db, argv[2], argv[3], err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "pgwctl: %s\n", err);
			return CTL_FAIL;
		}
		log_json_escape(esc, sizeof(esc), argv[3]);
		snprintf(after, sizeof(after), "{\"%s\":\"%s\"}", argv[2], esc);
		ctl_audit(c, "settings.update", "settings", argv[2], after);
		ctl_notify(c, TOPIC_SETTINGS);
		printf("%s = %s\n", argv[2], argv[3]);
		return CTL_OK;
	}
	fprintf(stderr, "usage: pgwctl settings list | get KEY | set KEY VALUE\n");
	return CTL_USAGE;
}
