/* fwdstats.h - where pgw-forwarder publishes its stats for pgw-api (/status, /metrics, the
 * live feed): one JSON file in PGW_RUN_DIR, rewritten whole (tmp + rename) every second. The
 * writer is forwarder/stats.c; readers load it whole. */
#ifndef PGW_FWDSTATS_H
#define PGW_FWDSTATS_H

#include <stddef.h>
#include <stdio.h>

#define FWDSTATS_FILE "forwarder.stats.json"

static inline void fwdstats_path(const char *run_dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/" FWDSTATS_FILE, run_dir);
}

#endif
