/* Configuration from PGW_* variables: defaults, overrides, and errors that name the variable. */
#include "testlib.h"

#include "config.h"
#include "log.h"

#include <fcntl.h>

/* every byte of buf is 0 */
static int all_zero(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i])
			return 0;
	return 1;
}

static int load(struct pgw_config *c, const char **env, char *err)
{
	return config_load(c, tl_env_get, env, err, 512);
}

static void test_defaults(void **state)
{
	struct pgw_config c;
	char err[512];
	const char *env[] = {NULL};

	(void)state;
	assert_int_equal(load(&c, env, err), 0);
	assert_string_equal(c.db_path, "/var/lib/pgw/pgw.db");
	assert_string_equal(c.run_dir, "/run/pgw");
	assert_string_equal(c.lan_iface, "ens19");
	assert_string_equal(c.wan_iface, "eth0");
	assert_string_equal(c.lan_cidr, "192.168.2.0/24");
	assert_string_equal(c.api_host, "127.0.0.1");
	assert_int_equal(c.api_port, 8080);
	assert_int_equal(c.health_interval_s, 30);
	assert_int_equal(c.forwarder_workers, 0); /* one per CPU */
	assert_int_equal(c.drop_root, 0);
	assert_int_equal(c.log_format, LOG_FMT_TEXT);
	assert_int_equal(c.jwt_secret_len, 0);
}

static void test_overrides(void **state)
{
	struct pgw_config c;
	char err[512];
	const char *env[] = {
	    "PGW_API_LISTEN=[::1]:9443", "PGW_LOG_FORMAT=json",	      "PGW_LOG_LEVEL=debug",
	    "PGW_FORWARDER_PORT=4000",	 "PGW_FORWARDER_WORKERS=8",   "PGW_HEALTH_INTERVAL=5",
	    "PGW_LAN_IFACE=veth-lan0",	 "PGW_LAN_CIDR=10.20.0.0/16", "PGW_HEALTH_URL=http://203.0.113.10/ip",
	    "PGW_DROP_ROOT=yes",	 "PGW_TLS_OFFLOAD=true",      NULL};

	(void)state;
	assert_int_equal(load(&c, env, err), 0);
	assert_string_equal(c.api_host, "::1");
	assert_int_equal(c.api_port, 9443);
	assert_int_equal(c.log_format, LOG_FMT_JSON);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	assert_int_equal(c.forwarder_port, 4000);
	assert_int_equal(c.forwarder_workers, 8);
	assert_int_equal(c.health_interval_s, 5);
	assert_string_equal(c.lan_iface, "veth-lan0");
	assert_string_equal(c.lan_cidr, "10.20.0.0/16");
	assert_string_equal(c.health_url, "http://203.0.113.10/ip");
	assert_int_equal(c.drop_root, 1);
	assert_int_equal(c.tls_offload, 1);
}

/* Each bad value is refused with a message that starts with the variable's name. */
static void test_errors_name_the_variable(void **state)
{
	static const struct {
		const char *kv, *name;
	} cases[] = {
	    {"PGW_FORWARDER_PORT=70000", "PGW_FORWARDER_PORT"},
	    {"PGW_FORWARDER_PORT=12ab", "PGW_FORWARDER_PORT"},
	    {"PGW_TPROXY_PORT=0", "PGW_TPROXY_PORT"},
	    {"PGW_FORWARDER_WORKERS=65", "PGW_FORWARDER_WORKERS"},
	    {"PGW_FORWARDER_WORKERS=-1", "PGW_FORWARDER_WORKERS"},
	    {"PGW_FORWARDER_WORKERS=two", "PGW_FORWARDER_WORKERS"},
	    {"PGW_DROP_ROOT=2", "PGW_DROP_ROOT"},
	    {"PGW_TLS_OFFLOAD=https", "PGW_TLS_OFFLOAD"},
	    {"PGW_LOG_LEVEL=loud", "PGW_LOG_LEVEL"},
	    {"PGW_LOG_FORMAT=xml", "PGW_LOG_FORMAT"},
	    {"PGW_LAN_CIDR=192.168.2.1/24", "PGW_LAN_CIDR"},
	    {"PGW_LAN_CIDR=192.168.2.0/33", "PGW_LAN_CIDR"},
	    {"PGW_LAN_IFACE=eth0/1", "PGW_LAN_IFACE"},
	    {"PGW_WAN_IFACE=averyveryverylongname", "PGW_WAN_IFACE"},
	    {"PGW_API_LISTEN=localhost", "PGW_API_LISTEN"},
	    {"PGW_API_LISTEN=:8080", "PGW_API_LISTEN"},
	    {"PGW_HEALTH_INTERVAL=0", "PGW_HEALTH_INTERVAL"},
	    {"PGW_HEALTH_INTERVAL=86401", "PGW_HEALTH_INTERVAL"},
	    {"PGW_HEALTH_TIMEOUT=-1", "PGW_HEALTH_TIMEOUT"},
	    {"PGW_HEALTH_URL=ftp://x/ip", "PGW_HEALTH_URL"},
	    {"PGW_RUN_DIR=relative/run", "PGW_RUN_DIR"},
	    {"PGW_TLS_CERT=/etc/pgw/cert.pem", "PGW_TLS_KEY"},
	    {"PGW_TLS_KEY=/etc/pgw/key.pem", "PGW_TLS_CERT"},
	    {"PGW_TPROXY_PORT=12345", "PGW_TPROXY_PORT"},
	};
	struct pgw_config c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env[] = {cases[i].kv, NULL};
		err[0] = '\0';
		assert_int_equal(load(&c, env, err), -EINVAL);
		if (strncmp(err, cases[i].name, strlen(cases[i].name)) != 0)
			fail_msg("%s: error '%s' does not name %s", cases[i].kv, err, cases[i].name);
	}
}

static void test_jwt_secret_file(void **state)
{
	char *dir = tl_tmpdir(), path[300], kv[320], err[512];
	struct pgw_config c;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/jwt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("0123456789abcdef0123456789abcdef-from-file\n", f);
	fclose(f);
	snprintf(kv, sizeof(kv), "PGW_JWT_SECRET_FILE=%s", path);
	{
		const char *env[] = {kv, NULL};
		assert_int_equal(load(&c, env, err), 0);
		assert_string_equal(c.jwt_secret, "0123456789abcdef0123456789abcdef-from-file");
		assert_int_equal(c.jwt_secret_len, 42);
		assert_int_equal(config_require_api(&c, err, sizeof(err)), 0);
	}
	{ /* both ways at once is ambiguous */
		const char *env[] = {kv, "PGW_JWT_SECRET=another-secret-another-secret-12345", NULL};
		assert_int_equal(load(&c, env, err), -EINVAL);
		assert_non_null(strstr(err, "PGW_JWT_SECRET_FILE"));
		assert_int_equal(c.jwt_secret_len, 0); /* wiped on error: every byte */
		assert_true(all_zero(c.jwt_secret, sizeof(c.jwt_secret)));
	}
	{
		/* unreadable: the daemons that do not use it start; pgw-api refuses, saying why */
		const char *env[] = {"PGW_JWT_SECRET_FILE=/nonexistent/pgw-jwt", NULL};
		assert_int_equal(load(&c, env, err), 0);
		assert_int_equal(c.jwt_secret_len, 0);
		assert_int_equal(config_require_api(&c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "PGW_JWT_SECRET_FILE: cannot read"));
	}
	tl_rmdir(dir);
}

static void test_api_requires_long_secret(void **state)
{
	struct pgw_config c;
	char err[512];
	const char *env_short[] = {"PGW_JWT_SECRET=short", NULL};
	const char *env_none[] = {NULL};

	(void)state;
	assert_int_equal(load(&c, env_short, err), 0);
	assert_int_equal(config_require_api(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "PGW_JWT_SECRET: too short"));
	assert_int_equal(load(&c, env_none, err), 0);
	assert_int_equal(config_require_api(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not set"));
}

/* The effective configuration is logged without the secrets' values. */
static void test_log_never_shows_secrets(void **state)
{
	const char *env[] = {"PGW_JWT_SECRET=TOPSECRET-jwt-0123456789abcdef0123456789",
			     "PGW_METRICS_TOKEN=TOPSECRET-metrics", NULL};
	struct pgw_config c;
	char err[512], buf[8192];
	int fds[2];
	ssize_t n;

	(void)state;
	assert_int_equal(load(&c, env, err), 0);
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	log_init("test", LOG_FMT_JSON, LOG_LVL_DEBUG);
	log_set_fd(fds[1]);
	config_log(&c);
	log_set_fd(2);
	n = read(fds[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_null(strstr(buf, "TOPSECRET"));
	assert_non_null(strstr(buf, "jwt_secret=(set)"));
	assert_non_null(strstr(buf, "metrics_token=(set)"));
	memset(c.ha_secret, 'S', sizeof(c.ha_secret)); /* (the pair's secret: as if read from its file) */
	c.ha_secret_len = sizeof(c.ha_secret);
	config_wipe(&c);
	assert_true(all_zero(c.jwt_secret, sizeof(c.jwt_secret))); /* every byte of each */
	assert_true(all_zero(c.metrics_token, sizeof(c.metrics_token)));
	assert_true(all_zero(c.ha_secret, sizeof(c.ha_secret)));
	assert_int_equal(c.jwt_secret_len, 0);
	assert_int_equal(c.ha_secret_len, 0);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_overrides),
	    cmocka_unit_test(test_errors_name_the_variable),
	    cmocka_unit_test(test_jwt_secret_file),
	    cmocka_unit_test(test_api_requires_long_secret),
	    cmocka_unit_test(test_log_never_shows_secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
