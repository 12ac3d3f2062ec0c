/* config.h - typed settings from PGW_* environment variables, validated, errors name the variable. */
#ifndef PGW_CONFIG_H
#define PGW_CONFIG_H

#include "log.h"

#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_SECRET_MAX 512

struct pgw_config {
	char db_path[PATH_MAX];
	char run_dir[108 - 24]; /* leaves room for "/<name>.sock" inside sun_path */
	enum log_format log_format;
	enum log_level log_level;
	char api_host[256];
	uint16_t api_port;
	char jwt_secret[CONFIG_SECRET_MAX]; /* secret: never logged */
	size_t jwt_secret_len;
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char web_dir[PATH_MAX];
	char lan_iface[16];
	char wan_iface[16];
	char lan_cidr[20];
	uint16_t forwarder_port;
	uint16_t tproxy_port;
	unsigned forwarder_workers; /* TCP relay threads; 0: one per CPU (at most 16) */
	uint16_t dns_port;
	char dns_tls_ca[PATH_MAX]; /* CA bundle for tls:// resolvers; "": the system's */
	unsigned health_interval_s;
	char health_url[512];
	unsigned health_timeout_s;
	char metrics_token[CONFIG_SECRET_MAX]; /* secret: never logged */
	char service_user[33];		       /* the daemons' user: strict OUTPUT mode lets only it out */
	int drop_root;			       /* PGW_DROP_ROOT: started as root, become service_user */
	int tls_offload;		       /* PGW_TLS_OFFLOAD: browsers reach pgw-api over HTTPS through a proxy */
	char ha_peer[46];		       /* HA: the other node's LAN address (canonical); "": no pair */
	char ha_secret[CONFIG_SECRET_MAX];     /* HA: the pair's shared secret (PGW_HA_SECRET_FILE): never logged */
	size_t ha_secret_len;
	int ha_secret_file;	  /* PGW_HA_SECRET_FILE was given */
	char ha_secret_err[300];  /* ...and could not be read (only pgw-api minds: config_require_ha) */
	char jwt_secret_err[300]; /* PGW_JWT_SECRET_FILE could not be read (only pgw-api minds: config_require_api) */
};

/* Returns the value of an environment variable or NULL; ctx is passed through. */
typedef const char *(*config_getenv_fn)(const char *name, void *ctx);

/* Fill cfg from the environment (get == NULL means getenv). On error returns -EINVAL and
 * writes a message that starts with the variable's name into err. */
int config_load(struct pgw_config *cfg, config_getenv_fn get, void *ctx, char *err, size_t errlen);
/* Stricter checks only pgw-api needs (a JWT secret of at least 32 bytes). */
int config_require_api(const struct pgw_config *cfg, char *err, size_t errlen);
/* The HA pair's settings hang together: PGW_HA_PEER needs a secret of at least 32 bytes. */
int config_require_ha(const struct pgw_config *cfg, char *err, size_t errlen);
/* Log the effective configuration at info level, secrets shown only as "(set)". */
void config_log(const struct pgw_config *cfg);
/* Wipe secrets before the struct goes away. */
void config_wipe(struct pgw_config *cfg);
/* Print every variable with its default and meaning (for --help). */
void config_usage(FILE *out);

#endif
