/* pgwctl - pgw admin CLI: schema migrations, users, settings, backup and restore, status. */
#include "pgwctl.h"

#include "audit.h"
#include "db.h"
#include "hastate.h"
#include "migrate.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *usage;
} cmds[] = {
    {"migrate", cmd_migrate, "migrate                         create or upgrade the database (idempotent)"},
    {"user", cmd_user,
     "user add NAME --role admin|viewer --password-stdin\n"
     "  user passwd NAME --password-stdin\n"
     "  user list"},
    {"settings", cmd_settings, "settings list | get KEY | set KEY VALUE"},
    {"backup", cmd_backup, "backup FILE                     online copy of the database into FILE"},
    {"restore", cmd_restore, "restore FILE                    replace the database with the backup FILE"},
    {"status", cmd_status, "status                          proxies, mappings, what pgw-agent applied"},
    {"stats", cmd_stats, "stats                           pgw-forwarder's counters now, as JSON (its control socket)"},
    {"check", cmd_check, "check PROXY_ID                  ask pgw-healthd to probe a proxy now (exit 0 up, 1 down)"},
    {"ha", cmd_ha,
     "ha status [--json]              the HA pair: role, peer, generation, lag (key: value lines; --json: one object)\n"
     "  ha notify MASTER|BACKUP|FAULT   keepalived's notify hook: record this node's role\n"
     "  ha check                        keepalived's check: exit 0 only when this node enforces (and has a "
     "configuration)"},
    {"notify", cmd_notify,
     "notify TOPIC...                 tell the daemons rows changed (proxies mappings health settings users all)"},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: pgwctl [--db PATH] COMMAND ...\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %s\n", cmds[i].usage);
	fprintf(out, "\nThe database is PGW_DB unless --db is given.\n\n");
	config_usage(out);
}

int ctl_open(struct ctl *c)
{
	char err[512];

	if (db_open(c->db_path, 0, &c->db, err, sizeof(err)) < 0 || migrate_check_schema(c->db, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

void ctl_notify(struct ctl *c, unsigned topics)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = topics};
	char err[256];
	struct notify *n = notify_open(c->cfg.run_dir, NULL, err, sizeof(err));

	if (!n)
		return;
	notify_broadcast(n, &m);
	notify_close(n);
}

int ctl_ha_writable(struct ctl *c)
{
	struct ha_state s;

	if (!c->cfg.ha_peer[0] || ha_state_read(c->db, &s) < 0 || ha_is_master(&s))
		return 0;
	if (!s.role[0] && !s.in_sync_at_ms) /* a new pair's first node, before keepalived runs */
		return 0;
	fprintf(stderr,
		"pgwctl: this node is the HA %s: its configuration follows the master's; make changes on the master at "
		"%s\n",
		s.role[0] ? s.role : "backup", c->cfg.ha_peer);
	return -1;
}

int ctl_read_secret_line(char *buf, size_t size)
{
	size_t len;

	if (!fgets(buf, (int)size, stdin))
		return -EINVAL;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && !feof(stdin))
		return -EINVAL; /* longer than the buffer */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return 0;
}

int ctl_audit(struct ctl *c, const char *action, const char *object_type, const char *object_id, const char *after_json)
{
	const char *user = getenv("SUDO_USER");
	char who[96];
	struct audit_entry e = {.remote_addr = "local",
				.action = action,
				.object_type = object_type,
				.object_id = object_id,
				.after_json = after_json};

	snprintf(who, sizeof(who), "pgwctl:%s", user && *user ? user : "root");
	e.username = who;
	return audit_record(c->db, &e);
}

int main(int argc, char **argv)
{
	struct ctl c;
	char err[512];
	int i = 1, r;

	memset(&c, 0, sizeof(c));
	if (config_load(&c.cfg, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: configuration error: %s\n", err);
		return CTL_FAIL;
	}
	log_init("pgwctl", LOG_FMT_TEXT, c.cfg.log_level < LOG_LVL_WARN ? c.cfg.log_level : LOG_LVL_WARN);
	c.db_path = c.cfg.db_path;
	if (i < argc && strcmp(argv[i], "--db") == 0) {
		if (i + 1 >= argc) {
			fprintf(stderr, "pgwctl: --db needs a path\n");
			return CTL_USAGE;
		}
		c.db_path = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? CTL_USAGE : CTL_OK;
	}
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(argv[i], cmds[k].name) == 0) {
			r = cmds[k].fn(&c, argc - i, argv + i);
			db_close(c.db);
			config_wipe(&c.cfg);
			return r;
		}
	}
	fprintf(stderr, "pgwctl: unknown command '%s' (see pgwctl --help)\n", argv[i]);
	return CTL_USAGE;
}
