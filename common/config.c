/* config.c - see config.h. One table lists every variable: name, default, type, meaning. */
#include "config.h"

#include "net.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_type {
	T_USER,
	T_PATH,
	T_RUNDIR,
	T_LOGFMT,
	T_LOGLVL,
	T_LISTEN,
	T_IFACE,
	T_CIDR,
	T_PORT,
	T_SECONDS,
	T_COUNT,
	T_BOOL,
	T_URL,
	T_SECRET,
	T_ADDR
};

struct cfg_var {
	const char *name;
	const char *def;
	enum cfg_type type;
	size_t off;   /* offset of the field in struct pgw_config */
	size_t size;  /* size of a string field */
	unsigned max; /* T_SECONDS, T_COUNT upper bound */
	const char *help;
};

#define F(field) offsetof(struct pgw_config, field), sizeof(((struct pgw_config *)0)->field)

static const struct cfg_var vars[] = {
    {"PGW_DB", "/var/lib/pgw/pgw.db", T_PATH, F(db_path), 0, "SQLite state database shared by all daemons"},
    {"PGW_RUN_DIR", "/run/pgw", T_RUNDIR, F(run_dir), 0, "directory of the daemons' notify sockets"},
    {"PGW_LOG_FORMAT", "text", T_LOGFMT, F(log_format), 0, "log line format: text or json"},
    {"PGW_LOG_LEVEL", "info", T_LOGLVL, F(log_level), 0, "error, warn, info or debug"},
    {"PGW_API_LISTEN", "127.0.0.1:8080", T_LISTEN, 0, 0, 0, "address:port pgw-api listens on"},
    {"PGW_JWT_SECRET", NULL, T_SECRET, F(jwt_secret), 0, "HS256 signing secret, >= 32 bytes (pgw-api)"},
    {"PGW_TLS_CERT", "", T_PATH, F(tls_cert), 0, "PEM certificate: serve HTTPS when set with PGW_TLS_KEY"},
    {"PGW_TLS_KEY", "", T_PATH, F(tls_key), 0, "PEM private key for PGW_TLS_CERT"},
    {"PGW_TLS_OFFLOAD", "false", T_BOOL, offsetof(struct pgw_config, tls_offload), 0, 0,
     "a reverse proxy in front of pgw-api serves it to the browsers over HTTPS: session cookies are marked "
     "Secure and the addresses pgw-api builds for sign-in are https (with PGW_TLS_CERT they are anyway)"},
    {"PGW_WEB_DIR", "/usr/share/pgw/web", T_PATH, F(web_dir), 0, "static files of the web dashboard"},
    {"PGW_LAN_IFACE", "ens19", T_IFACE, F(lan_iface), 0, "interface facing the LAN clients"},
    {"PGW_WAN_IFACE", "eth0", T_IFACE, F(wan_iface), 0, "interface facing the upstream proxies (WAN)"},
    {"PGW_LAN_CIDR", "192.168.2.0/24", T_CIDR, F(lan_cidr), 0, "IPv4 network of the LAN clients"},
    {"PGW_FORWARDER_PORT", "12345", T_PORT, offsetof(struct pgw_config, forwarder_port), 0, 0,
     "REDIRECT listener port of pgw-forwarder"},
    {"PGW_TPROXY_PORT", "12346", T_PORT, offsetof(struct pgw_config, tproxy_port), 0, 0,
     "TPROXY listener port of pgw-forwarder"},
    {"PGW_FORWARDER_WORKERS", "0", T_COUNT, offsetof(struct pgw_config, forwarder_workers), 0, 64,
     "pgw-forwarder's TCP relay threads, each with its own descriptor table (the descriptor limit counts per "
     "thread: each holds up to about half of it in connections); 0: one per CPU, at most 16"},
    {"PGW_DNS_PORT", "15353", T_PORT, offsetof(struct pgw_config, dns_port), 0, 0,
     "DNS listener port of pgw-forwarder (UDP and TCP, every dns_mode; clients' port 53 is redirected to it "
     "in dns_mode=proxy; keep it >= 1024; taken: the forwarder does not start)"},
    {"PGW_DNS_TLS_CA", "", T_PATH, F(dns_tls_ca), 0,
     "PEM CA bundle that tls:// DNS resolvers' certificates must chain to, instead of the system's trust store "
     "(empty: the system's); a file without a CA: the forwarder does not start"},
    {"PGW_HEALTH_INTERVAL", "30", T_SECONDS, offsetof(struct pgw_config, health_interval_s), 0, 86400,
     "seconds between health probes (first value of the setting)"},
    {"PGW_HEALTH_URL", "http://ifconfig.me/ip", T_URL, F(health_url), 0, "exit-IP echo URL fetched through each proxy"},
    {"PGW_HEALTH_TIMEOUT", "5", T_SECONDS, offsetof(struct pgw_config, health_timeout_s), 0, 300,
     "seconds a probe step may take"},
    {"PGW_METRICS_TOKEN", NULL, T_SECRET, F(metrics_token), 0, "optional bearer token required by /metrics"},
    {"PGW_SERVICE_USER", "pgw", T_USER, F(service_user), 0,
     "user the daemons run as; strict OUTPUT mode lets only it reach the WAN"},
    {"PGW_DROP_ROOT", "false", T_BOOL, offsetof(struct pgw_config, drop_root), 0, 0,
     "started as root (a container, where only root is given capabilities): become PGW_SERVICE_USER at once, "
     "keeping only CAP_NET_ADMIN (pgw-agent; pgw-forwarder when it was given it); needs CAP_SETUID and CAP_SETGID"},
    {"PGW_HA_PEER", "", T_ADDR, F(ha_peer), 0,
     "HA pair: the other node's LAN address (keepalived, config sync); empty: a single gateway"},
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *env_get(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

/* Read a secret file into buf, trailing newlines stripped. 0 or -errno / -EFBIG. */
static int read_secret_file(const char *path, char *buf, size_t size, size_t *len)
{
	ssize_t n;
	size_t total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + total, size - 1 - total)) > 0) {
		total += (size_t)n;
		if (total == size - 1) {
			char extra;
			if (read(fd, &extra, 1) > 0)
				r = -EFBIG;
			break;
		}
	}
	if (n < 0)
		r = -errno;
	close(fd);
	while (total > 0 && (buf[total - 1] == '\n' || buf[total - 1] == '\r'))
		total--;
	buf[total] = '\0';
	*len = total;
	return r;
}

static int set_var(struct pgw_config *cfg, const struct cfg_var *v, const char *val, char *err, size_t errlen)
{
	char *field = (char *)cfg + v->off;
	uint64_t n;
	struct net_http_url urls[NET_HTTP_URLS_MAX];

	switch (v->type) {
	case T_USER:
		if (strlen(val) == 0 || strlen(val) >= v->size ||
		    strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(val) || val[0] == '-')
			return fail(err, errlen, "%s: '%s' is not a user name", v->name, val);
		strcpy(field, val);
		return 0;
	case T_PATH:
	case T_RUNDIR:
	case T_URL:
	case T_SECRET:
		if (strlen(val) >= v->size)
			return fail(err, errlen, "%s: value too long (at most %zu bytes)", v->name, v->size - 1);
		if (v->type == T_RUNDIR && val[0] != '/')
			return fail(err, errlen, "%s: '%s' must be an absolute path", v->name, val);
		if (v->type == T_URL && net_http_url_list_parse(val, urls, NET_HTTP_URLS_MAX) < 0)
			return fail(err, errlen,
				    "%s: '%s' must be http:// or https://host[:port][/path] (host: a name, an IPv4 "
				    "address or [an IPv6 address]), or up to 4 of them, comma-separated",
				    v->name, val);
		strcpy(field, val);
		if (v->type == T_SECRET && v->off == offsetof(struct pgw_config, jwt_secret))
			cfg->jwt_secret_len = strlen(val);
		return 0;
	case T_LOGFMT:
		if (log_format_parse(val, (enum log_format *)field) < 0)
			return fail(err, errlen, "%s: '%s' is not a log format (text or json)", v->name, val);
		return 0;
	case T_LOGLVL:
		if (log_level_parse(val, (enum log_level *)field) < 0)
			return fail(err, errlen, "%s: '%s' is not a log level (error, warn, info, debug)", v->name,
				    val);
		return 0;
	case T_LISTEN:
		if (net_hostport_parse(val, cfg->api_host, sizeof(cfg->api_host), &cfg->api_port) < 0)
			return fail(err, errlen, "%s: '%s' is not host:port (port 1-65535)", v->name, val);
		return 0;
	case T_IFACE:
		if (!net_ifname_valid(val))
			return fail(err, errlen, "%s: '%s' is not a valid interface name", v->name, val);
		strcpy(field, val);
		return 0;
	case T_CIDR: {
		struct net_cidr4 c;
		if (strlen(val) >= v->size || net_cidr4_parse(val, &c) < 0)
			return fail(err, errlen, "%s: '%s' is not an IPv4 network like 192.168.2.0/24", v->name, val);
		strcpy(field, val);
		return 0;
	}
	case T_PORT:
		if (parse_u64(val, 1, 65535, &n) < 0)
			return fail(err, errlen, "%s: '%s' is not a port (1-65535)", v->name, val);
		*(uint16_t *)field = (uint16_t)n;
		return 0;
	case T_ADDR: {
		struct net_ip ip;
		if (!*val) {
			*field = '\0';
			return 0;
		}
		if (net_ip_parse(val, &ip) < 0)
			return fail(err, errlen, "%s: '%s' is not an IPv4 or IPv6 address", v->name, val);
		net_ip_str(&ip, field);
		return 0;
	}
	case T_SECONDS:
		if (parse_u64(val, 1, v->max, &n) < 0)
			return fail(err, errlen, "%s: '%s' is not a number of seconds (1-%u)", v->name, val, v->max);
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_COUNT:
		if (parse_u64(val, 0, v->max, &n) < 0)
			return fail(err, errlen, "%s: '%s' is not a number (0-%u)", v->name, val, v->max);
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_BOOL:
		if (parse_bool(val, (int *)field) < 0)
			return fail(err, errlen, "%s: '%s' is not a boolean (true or false)", v->name, val);
		return 0;
	}
	return fail(err, errlen, "%s: unknown type", v->name);
}

int config_load(struct pgw_config *cfg, config_getenv_fn get, void *ctx, char *err, size_t errlen)
{
	const char *file;
	int r;

	if (!get)
		get = env_get;
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *val = get(vars[i].name, ctx);
		if (!val)
			val = vars[i].def;
		if (!val)
			continue;
		r = set_var(cfg, &vars[i], val, err, errlen);
		if (r < 0) {
			config_wipe(cfg);
			return r;
		}
	}

	file = get("PGW_JWT_SECRET_FILE", ctx);
	if (file && *file) {
		if (cfg->jwt_secret_len > 0) {
			config_wipe(cfg);
			return fail(err, errlen, "PGW_JWT_SECRET_FILE: set together with PGW_JWT_SECRET; use one");
		}
		/* only pgw-api needs it (config_require_api): the others start without it, so one file
		 * only pgw may read serves them all (the agent reads it as root before it drops root) */
		r = read_secret_file(file, cfg->jwt_secret, sizeof(cfg->jwt_secret), &cfg->jwt_secret_len);
		if (r < 0) {
			explicit_bzero(cfg->jwt_secret, sizeof(cfg->jwt_secret));
			cfg->jwt_secret_len = 0;
			snprintf(cfg->jwt_secret_err, sizeof(cfg->jwt_secret_err), "cannot read '%.200s': %s", file,
				 r == -EFBIG ? "file too large" : strerror(-r));
		}
	}
	file = get("PGW_HA_SECRET_FILE", ctx);
	if (file && *file) { /* only pgw-api needs it (config_require_ha): others start without it */
		r = read_secret_file(file, cfg->ha_secret, sizeof(cfg->ha_secret), &cfg->ha_secret_len);
		if (r < 0) {
			explicit_bzero(cfg->ha_secret, sizeof(cfg->ha_secret));
			cfg->ha_secret_len = 0;
			snprintf(cfg->ha_secret_err, sizeof(cfg->ha_secret_err), "cannot read '%.200s': %s", file,
				 r == -EFBIG ? "file too large" : strerror(-r));
		}
		cfg->ha_secret_file = 1;
	}
	if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
		config_wipe(cfg);
		return fail(err, errlen, "%s: PGW_TLS_CERT and PGW_TLS_KEY must be set together",
			    cfg->tls_cert[0] ? "PGW_TLS_KEY" : "PGW_TLS_CERT");
	}
	if (cfg->forwarder_port == cfg->tproxy_port) {
		config_wipe(cfg);
		return fail(err, errlen, "PGW_TPROXY_PORT: must differ from PGW_FORWARDER_PORT (%u)",
			    cfg->forwarder_port);
	}
	if (cfg->dns_port == cfg->forwarder_port || cfg->dns_port == cfg->tproxy_port) {
		config_wipe(cfg);
		return fail(err, errlen, "PGW_DNS_PORT: must differ from PGW_FORWARDER_PORT and PGW_TPROXY_PORT (%u)",
			    cfg->dns_port);
	}
	return 0;
}

int config_require_api(const struct pgw_config *cfg, char *err, size_t errlen)
{
	if (cfg->jwt_secret_err[0])
		return fail(err, errlen, "PGW_JWT_SECRET_FILE: %s", cfg->jwt_secret_err);
	if (cfg->jwt_secret_len < 32)
		return fail(err, errlen, "PGW_JWT_SECRET: %s (at least 32 bytes, or PGW_JWT_SECRET_FILE)",
			    cfg->jwt_secret_len ? "too short" : "not set");
	return config_require_ha(cfg, err, errlen);
}

int config_require_ha(const struct pgw_config *cfg, char *err, size_t errlen)
{
	if (cfg->ha_peer[0] && cfg->ha_secret_err[0])
		return fail(err, errlen, "PGW_HA_SECRET_FILE: %s", cfg->ha_secret_err);
	if (cfg->ha_peer[0] && cfg->ha_secret_len < 32)
		return fail(err, errlen,
			    "PGW_HA_SECRET_FILE: %s (PGW_HA_PEER is set: the pair needs a shared secret of at "
			    "least 32 bytes)",
			    cfg->ha_secret_len ? "the secret is too short" : "not set");
	if (!cfg->ha_peer[0] && cfg->ha_secret_file)
		return fail(err, errlen, "PGW_HA_SECRET_FILE: set without PGW_HA_PEER");
	return 0;
}

void config_log(const struct pgw_config *cfg)
{
	log_info("config: db=%s run_dir=%s api=%s:%u web_dir=%s tls=%s lan=%s(%s) wan=%s forwarder_port=%u "
		 "tproxy_port=%u dns_port=%u health_interval=%us health_timeout=%us health_url=%s jwt_secret=%s "
		 "metrics_token=%s ha_peer=%s ha_secret=%s",
		 cfg->db_path, cfg->run_dir, cfg->api_host, cfg->api_port, cfg->web_dir,
		 cfg->tls_cert[0] ? "on" : "off", cfg->lan_iface, cfg->lan_cidr, cfg->wan_iface, cfg->forwarder_port,
		 cfg->tproxy_port, cfg->dns_port, cfg->health_interval_s, cfg->health_timeout_s, cfg->health_url,
		 cfg->jwt_secret_len ? "(set)" : "(unset)", cfg->metrics_token[0] ? "(set)" : "(unset)",
		 cfg->ha_peer[0] ? cfg->ha_peer : "-", cfg->ha_secret_len ? "(set)" : "(unset)");
}

void config_wipe(struct pgw_config *cfg)
{
	explicit_bzero(cfg->jwt_secret, sizeof(cfg->jwt_secret));
	explicit_bzero(cfg->metrics_token, sizeof(cfg->metrics_token));
	explicit_bzero(cfg->ha_secret, sizeof(cfg->ha_secret));
	cfg->ha_secret_len = 0;
	cfg->jwt_secret_len = 0;
}

void config_usage(FILE *out)
{
	fprintf(out, "Environment (defaults in brackets):\n");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		fprintf(out, "  %-22s %s [%s]\n", vars[i].name, vars[i].help, vars[i].def ? vars[i].def : "unset");
	fprintf(out, "  %-22s %s\n", "PGW_JWT_SECRET_FILE", "file holding the JWT secret (instead of PGW_JWT_SECRET)");
	fprintf(out, "  %-22s %s\n", "PGW_HA_SECRET_FILE", "HA pair: file holding the shared secret (>= 32 bytes)");
}
