#!/usr/bin/env bash
# Scenario: docs/API_SPEC.yaml and pgw-api agree: tests/api_spec_check.py calls every
# documented path and method and checks statuses and response shapes against the spec.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
export PGW_JWT_SECRET=spec-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080
echo 'spec-admin-password' | "$PGW_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
lab_exec gw python3 "$ROOT/tests/api_spec_check.py" "$ROOT/docs/API_SPEC.yaml" http://127.0.0.1:8080 \
	spec-admin-password "$LAB_SOCKS_NOAUTH" >"$LAB_DIR/spec.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/spec.out"
check "every documented operation answers as documented ($(grep -c '^ok' "$LAB_DIR/spec.out") calls)" test $rc -eq 0
finish
