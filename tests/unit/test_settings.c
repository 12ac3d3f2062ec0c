/* Runtime settings: first values from the environment, validation that changes nothing. */
#include "testlib.h"

#include "config.h"
#include "net.h"
#include "settings.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

static void cfg_default(struct pgw_config *c, const char **env)
{
	char err[512];

	assert_int_equal(config_load(c, tl_env_get, env, err, sizeof(err)), 0);
}

static void test_seed_from_env_and_defaults(void **state)
{
	const char *env[] = {"PGW_LAN_IFACE=lan0", "PGW_HEALTH_INTERVAL=12", NULL};
	char *dir = tl_tmpdir(), v[SETTINGS_VALUE_MAX];
	sqlite3 *db = tl_db(dir, "a.db");
	struct pgw_config c;

	(void)state;
	cfg_default(&c, env);
	assert_int_equal(settings_seed(db, &c), 0);
	assert_int_equal(settings_get(db, "lan_iface", v, sizeof(v)), 0);
	assert_string_equal(v, "lan0");
	assert_int_equal(settings_get(db, "health_interval", v, sizeof(v)), 0);
	assert_string_equal(v, "12");
	assert_int_equal(settings_get(db, "forwarder_mode", v, sizeof(v)), 0);
	assert_string_equal(v, "redirect");
	assert_int_equal(settings_get(db, "dns_mode", v, sizeof(v)), 0);
	assert_string_equal(v, "proxy");
	assert_int_equal(settings_get(db, "strict_output", v, sizeof(v)), 0);
	assert_string_equal(v, "false");
	/* every key has a value that passes its own validation */
	for (const struct settings_key *k = settings_keys(); k->key; k++) {
		char err[600];
		assert_int_equal(settings_get(db, k->key, v, sizeof(v)), 0);
		if (settings_validate(k->key, v, err, sizeof(err)) != 0)
			fail_msg("seeded value invalid: %s", err);
	}
	db_close(db);
	tl_rmdir(dir);
}

/* Once set, the DB value wins over the environment on the next seed (restart). */
static void test_seed_keeps_db_values(void **state)
{
	const char *env[] = {"PGW_HEALTH_INTERVAL=12", NULL};
	char *dir = tl_tmpdir(), v[SETTINGS_VALUE_MAX], err[600];
	sqlite3 *db = tl_db(dir, "a.db");
	struct pgw_config c;

	(void)state;
	cfg_default(&c, env);
	assert_int_equal(settings_seed(db, &c), 0);
	assert_int_equal(settings_set(db, "health_interval", "45", err, sizeof(err)), 0);
	assert_int_equal(settings_set(db, "health_url", "http://[2001:db8:203::10]:8080/ip", err, sizeof(err)), 0);
	assert_int_equal(settings_seed(db, &c), 0);
	assert_int_equal(settings_get(db, "health_interval", v, sizeof(v)), 0);
	assert_string_equal(v, "45");
	assert_int_equal(settings_get(db, "health_url", v, sizeof(v)), 0);
	assert_string_equal(v, "http://[2001:db8:203::10]:8080/ip");
	db_close(db);
	tl_rmdir(dir);
}

static void test_invalid_values_change_nothing(void **state)
{
	static const char *const bad[][2] = {
	    {"health_interval", "0"},
	    {"health_interval", "abc"},
	    {"health_timeout", "301"},
	    {"lan_cidr", "192.168.2.5/24"},
	    {"lan_iface", "a b"},
	    {"forwarder_mode", "magic"},
	    {"dns_mode", ""},
	    {"block_action", "REJECT"},
	    {"strict_output", "perhaps"},
	    {"health_url", "ftp://x/ip"},
	    {"health_ca_file", "relative/ca.pem"},
	    {"health_url", "http:///ip"},
	    {"health_fail_threshold", "11"},
	    {"health_url", "http://u:p@x/ip"},
	    {"health_url", "http://2001:db8::1/ip"},
	};
	const char *env[] = {NULL};
	char *dir = tl_tmpdir(), before[SETTINGS_VALUE_MAX], after[SETTINGS_VALUE_MAX], err[600];
	sqlite3 *db = tl_db(dir, "a.db");
	struct pgw_config c;

	(void)state;
	cfg_default(&c, env);
	assert_int_equal(settings_seed(db, &c), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sqlite3_int64 n;
		unsigned char *image = tl_image(db, &n); /* the whole database, not only that row */
		assert_int_equal(settings_get(db, bad[i][0], before, sizeof(before)), 0);
		err[0] = '\0';
		assert_int_equal(settings_set(db, bad[i][0], bad[i][1], err, sizeof(err)), -EINVAL);
		assert_int_equal(strncmp(err, bad[i][0], strlen(bad[i][0])), 0); /* names the setting */
		assert_int_equal(settings_get(db, bad[i][0], after, sizeof(after)), 0);
		assert_string_equal(before, after);
		tl_image_unchanged(db, image, n);
	}
	{
		sqlite3_int64 n;
		unsigned char *image = tl_image(db, &n);
		assert_int_equal(settings_set(db, "no_such_key", "1", err, sizeof(err)), -ENOENT);
		tl_image_unchanged(db, image, n);
	}
	assert_int_equal(settings_set(db, "block_action", "drop", err, sizeof(err)), 0);
	assert_int_equal(settings_get(db, "block_action", after, sizeof(after)), 0);
	assert_string_equal(after, "drop");
	db_close(db);
	tl_rmdir(dir);
}

/* The typed getters: the DB's value, else the registry's default (or the environment that
 * seeds the key), also for a bad row written by hand. One registry serves the schema. */
static void test_getters_and_schema(void **state)
{
	const char *env[] = {"PGW_HEALTH_INTERVAL=12", NULL};
	char *dir = tl_tmpdir(), v[SETTINGS_VALUE_MAX], *schema;
	sqlite3 *db = tl_db(dir, "a.db");
	struct pgw_config c;
	int n = 0;

	(void)state;
	cfg_default(&c, env);
	assert_int_equal(settings_uint(db, &c, "forwarder_idle_timeout"), 900); /* unset: the registry */
	assert_int_equal(settings_uint(db, &c, "health_interval"), 12);		/* unset: the environment */
	assert_int_equal(settings_bool(db, &c, "socks_pipelining"), 1);
	settings_str(db, &c, "block_action", v, sizeof(v));
	assert_string_equal(v, "reject");
	assert_int_equal(tl_exec(db, "INSERT INTO settings (key, value) VALUES ('forwarder_idle_timeout', '60'),"
				     "('health_fail_threshold', 'lots'), ('block_action', 'explode')"),
			 SQLITE_OK);
	assert_int_equal(settings_uint(db, &c, "forwarder_idle_timeout"), 60);
	assert_int_equal(settings_uint(db, &c, "health_fail_threshold"), 1); /* a bad row: the default */
	settings_str(db, &c, "block_action", v, sizeof(v));
	assert_string_equal(v, "reject");
	settings_value(db, &c, "block_action", v, sizeof(v)); /* as it is, for callers that refuse */
	assert_string_equal(v, "explode");
	for (const struct settings_key *k = settings_keys(); k->key; k++, n++) {
		assert_true(k->label && *k->label && k->help && *k->help);
	}
	schema = settings_schema_json();
	assert_non_null(schema);
	{
		json_t *j = json_loads(schema, 0, NULL);
		assert_non_null(j);
		assert_int_equal(json_array_size(j), n);
		assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "key")), "lan_iface");
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *e = json_array_get(j, i);
			char err[600];
			const char *def = json_string_value(json_object_get(e, "default"));
			/* every default passes its own validation */
			if (settings_validate(json_string_value(json_object_get(e, "key")), def, err, sizeof(err)) != 0)
				fail_msg("default invalid: %s", err);
		}
		json_decref(j);
	}
	free(schema);
	db_close(db);
	tl_rmdir(dir);
}

/* The single sign-on settings (issue 23): what each accepts and refuses, and the login check. */
static void test_oidc_settings(void **state)
{
	static const char *const good[][2] = {
	    {"oidc_issuer", ""},
	    {"oidc_issuer", "https://idp.example.com/realms/pgw"},
	    {"oidc_issuer", "http://127.0.0.1:9080"},
	    {"oidc_issuer", "http://[::1]:9080/op"},
	    {"oidc_issuer", "http://localhost:8080"},
	    {"oidc_redirect_url", "http://192.168.2.1:8080/api/v1/auth/oidc/callback"},
	    {"oidc_scopes", "openid"},
	    {"oidc_scopes", "openid profile email groups"},
	    {"oidc_role_map", ""},
	    {"oidc_role_map", "admins=admin,staff=viewer"},
	    {"oidc_role_map", " Domain Admins = superadmin , ops=Org B:viewer"},
	    {"oidc_role_claim", "roles"},
	    {"oidc_provider_name", "Acme Login"},
	    {"oidc_provider_name", "Connexion Soci\xc3\xa9t\xc3\xa9 \xe2\x9c\x93"},
	    {"local_login", "breakglass"},
	    {"oidc_breakglass_user", "root.admin@x"},
	};
	static const char *const bad[][2] = {
	    {"oidc_issuer", "http://192.168.2.5:9080"}, /* plain http off loopback */
	    {"oidc_issuer", "ftp://idp.example.com"},
	    {"oidc_issuer", "https://idp.example.com/?x=1"},
	    {"oidc_redirect_url", "javascript:alert(1)"},
	    {"oidc_scopes", "profile email"}, /* no openid */
	    {"oidc_scopes", "openid pro\tfile"},
	    {"oidc_role_map", "admins"},
	    {"oidc_role_map", "admins=root"},
	    {"oidc_role_map", "=admin"},
	    {"oidc_role_map", "ops=:admin"},
	    {"oidc_role_map", "ops=Org B:superadmin"},
	    {"oidc_role_claim", ""},
	    {"oidc_role_claim", "two words"},
	    {"oidc_client_id", "a\nb"},
	    {"oidc_provider_name", ""},
	    {"oidc_provider_name", "bad \xc3"},		/* cut UTF-8 */
	    {"oidc_provider_name", "bad \xc0\xaf"},	/* overlong */
	    {"oidc_provider_name", "bad \xed\xa0\x80"}, /* a surrogate */
	    {"oidc_client_id", "caf\xc3\xa9"},		/* a word is ASCII */
	    {"local_login", "off"},
	    {"oidc_breakglass_user", "no spaces"},
	};
	char err[600], g[SETTINGS_VALUE_MAX], rl[SETTINGS_VALUE_MAX], *dir = tl_tmpdir();
	const char *pos = "a=admin, b c = Org B:viewer ,d=superadmin", *k, *v;
	sqlite3 *db = tl_db(dir, "o.db");

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (settings_validate(good[i][0], good[i][1], err, sizeof(err)) != 0)
			fail_msg("%s=%s refused: %s", good[i][0], good[i][1], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (settings_validate(bad[i][0], bad[i][1], err, sizeof(err)) != -EINVAL || !strstr(err, bad[i][0]))
			fail_msg("%s=%s accepted (or no reason: %s)", bad[i][0], bad[i][1], err);
	}
	assert_int_equal(settings_rolemap_next(&pos, g, sizeof(g), rl, sizeof(rl)), 1);
	assert_string_equal(g, "a");
	assert_string_equal(rl, "admin");
	assert_int_equal(settings_rolemap_next(&pos, g, sizeof(g), rl, sizeof(rl)), 1);
	assert_string_equal(g, "b c");
	assert_string_equal(rl, "Org B:viewer");
	assert_int_equal(settings_rolemap_next(&pos, g, sizeof(g), rl, sizeof(rl)), 1);
	assert_string_equal(rl, "superadmin");
	assert_int_equal(settings_rolemap_next(&pos, g, sizeof(g), rl, sizeof(rl)), 0);
	/* breakglass needs SSO set up and a break-glass user who is an enabled local superadmin */
	assert_int_equal(
	    sqlite3_exec(db,
			 "INSERT INTO users (username, password_hash, role, superadmin) VALUES ('root', "
			 "'$argon2id$x', 'admin', 1), ('eve', '$argon2id$x', 'viewer', 0), ('orgadm', "
			 "'$argon2id$x', 'admin', 0);"
			 "INSERT INTO users (username, password_hash, role, superadmin, disabled) VALUES ('offsa', "
			 "'$argon2id$x', 'admin', 1, 1);"
			 "INSERT INTO users (username, password_hash, role, superadmin, sso_issuer, sso_subject) "
			 "VALUES ('sso1', '$argon2id$sso', 'admin', 1, 'https://idp', 's1')",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	k = "local_login";
	v = "breakglass";
	assert_int_equal(settings_check_login(db, &k, &v, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "oidc_issuer")); /* no SSO: nobody else could sign in */
	const char *ks[4] = {"local_login", "oidc_issuer", "oidc_client_id", "oidc_breakglass_user"},
		   *vs[4] = {"breakglass", "https://idp", "pgw", ""};
	assert_int_equal(settings_check_login(db, ks, vs, 4, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "oidc_breakglass_user"));
	const char *const refused[] = {"eve", "orgadm", "sso1", "nobody", "offsa"};
	for (size_t i = 0; i < 5; i++) {
		vs[3] = refused[i];
		if (settings_check_login(db, ks, vs, 4, err, sizeof(err)) != -EINVAL)
			fail_msg("break-glass user %s accepted", refused[i]);
	}
	vs[3] = "root";
	assert_int_equal(settings_check_login(db, ks, vs, 4, err, sizeof(err)), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(settings_set(db, ks[i], vs[i], err, sizeof(err)), 0);
	k = "oidc_issuer"; /* while breakglass, single sign-on cannot be switched off */
	v = "";
	assert_int_equal(settings_check_login(db, &k, &v, 1, err, sizeof(err)), -EINVAL);
	assert_int_equal(settings_breakglass_user(db, 1), 1); /* root: the API refuses to delete or demote it */
	assert_int_equal(settings_breakglass_user(db, 2), 0);
	k = "local_login";
	v = "on"; /* turning it back on is always allowed */
	assert_int_equal(settings_check_login(db, &k, &v, 1, err, sizeof(err)), 0);
	assert_int_equal(settings_set(db, "local_login", "on", err, sizeof(err)), 0);
	assert_int_equal(settings_breakglass_user(db, 1), 0); /* root may be changed again */
	sqlite3_close(db);
	tl_rmdir(dir);
}

/* A switch is stored and read as "true" or "false" whatever spelling pgwctl was given, and one
 * stored otherwise (a database from before) reads so too: the dashboard's select has those two. */
static void test_bool_spellings(void **state)
{
	char *dir = tl_tmpdir(), v[SETTINGS_VALUE_MAX], err[600];
	sqlite3 *db = tl_db(dir, "a.db");
	const char *on[] = {"yes", "ON", "1", "True"}, *off[] = {"no", "off", "0", "FALSE"};

	(void)state;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(settings_set(db, "strict_output", on[i], err, sizeof(err)), 0);
		assert_int_equal(tl_int(db, "SELECT value = 'true' FROM settings WHERE key = 'strict_output'"), 1);
		assert_int_equal(settings_get(db, "strict_output", v, sizeof(v)), 0);
		assert_string_equal(v, "true");
		assert_int_equal(settings_set(db, "strict_output", off[i], err, sizeof(err)), 0);
		assert_int_equal(settings_get(db, "strict_output", v, sizeof(v)), 0);
		assert_string_equal(v, "false");
	}
	assert_int_equal(tl_exec(db, "UPDATE settings SET value = 'on' WHERE key = 'strict_output'"), SQLITE_OK);
	assert_int_equal(settings_get(db, "strict_output", v, sizeof(v)), 0);
	assert_string_equal(v, "true");
	assert_int_equal(settings_bool(db, NULL, "strict_output"), 1);
	/* not a switch: as written */
	assert_int_equal(settings_set(db, "lan_cidr", "192.168.7.0/24", err, sizeof(err)), 0);
	assert_int_equal(settings_get(db, "lan_cidr", v, sizeof(v)), 0);
	assert_string_equal(v, "192.168.7.0/24");
	db_close(db);
	tl_rmdir(dir);
}

static void *read_in_thread(void *db)
{
	settings_read_begin();
	(void)settings_bool(db, NULL, "strict_output");
	return (void *)(intptr_t)settings_read_end();
}

/* A read the DB does not answer takes the default, and settings_read_end says so (unset is an
 * answer); until the next settings_read_begin, and on this thread only. */
static void test_read_errors(void **state)
{
	char *dir = tl_tmpdir(), v[SETTINGS_VALUE_MAX], err[600];
	sqlite3 *db = tl_db(dir, "a.db");
	const char *env[] = {NULL};
	struct pgw_config c;
	pthread_t th;
	void *other;

	(void)state;
	cfg_default(&c, env);
	assert_int_equal(settings_set(db, "strict_output", "true", err, sizeof(err)), 0);
	settings_read_begin();
	assert_int_equal(settings_bool(db, NULL, "strict_output"), 1);
	settings_lan(db, &c, &(struct net_lan){0});
	assert_int_equal(settings_read_end(), 0);
	assert_int_equal(tl_exec(db, "DELETE FROM settings WHERE key = 'strict_output'"), SQLITE_OK);
	settings_read_begin();
	assert_int_equal(settings_bool(db, NULL, "strict_output"), 0); /* unset: its default */
	assert_int_equal(settings_read_end(), 0);
	settings_read_begin();
	settings_str(NULL, &c, "dns_mode", v, sizeof(v)); /* no DB (the agent's table granting nobody) */
	assert_string_equal(v, "proxy");
	assert_int_equal(settings_read_end(), 0);

	assert_int_equal(settings_set(db, "strict_output", "true", err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db, "ALTER TABLE settings RENAME COLUMN value TO v"), SQLITE_OK);
	settings_read_begin();
	assert_int_equal(settings_bool(db, NULL, "strict_output"), 0); /* the default stood in */
	assert_int_equal(settings_bool(db, NULL, "udp_relay"), 1);
	assert_int_equal(settings_read_end(), -EIO);
	assert_int_equal(settings_read_end(), -EIO); /* until begin */
	settings_read_begin();
	settings_value(db, &c, "lan_iface", v, sizeof(v));
	assert_int_equal(settings_read_end(), -EIO);
	settings_read_begin();
	assert_int_equal(pthread_create(&th, NULL, read_in_thread, db), 0);
	assert_int_equal(pthread_join(th, &other), 0);
	assert_int_equal((intptr_t)other, -EIO);  /* the thread's own read failed ... */
	assert_int_equal(settings_read_end(), 0); /* ... not this one's */

	assert_int_equal(tl_exec(db, "ALTER TABLE settings RENAME COLUMN v TO value"), SQLITE_OK);
	settings_read_begin();
	assert_int_equal(settings_bool(db, NULL, "strict_output"), 1);
	assert_int_equal(settings_read_end(), 0);
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_from_env_and_defaults),
	    cmocka_unit_test(test_seed_keeps_db_values),
	    cmocka_unit_test(test_invalid_values_change_nothing),
	    cmocka_unit_test(test_getters_and_schema),
	    cmocka_unit_test(test_oidc_settings),
	    cmocka_unit_test(test_bool_spellings),
	    cmocka_unit_test(test_read_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
