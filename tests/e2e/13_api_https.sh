#!/usr/bin/env bash
# Scenario: pgw-api serves HTTPS with PGW_TLS_CERT/PGW_TLS_KEY: TLS answers, plain HTTP does
# not, the session cookie is Secure; a missing key file is refused at start, naming it;
# PGW_METRICS_TOKEN guards /metrics.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
lab_pgw_env
export PGW_JWT_SECRET=tls-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8443
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pgw.lab -keyout "$LAB_DIR/key.pem" \
	-out "$LAB_DIR/cert.pem" >/dev/null 2>&1
echo 'admin-password-1' | "$PGW_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
out=$(PGW_TLS_CERT=$LAB_DIR/cert.pem PGW_TLS_KEY=$LAB_DIR/missing.pem "$PGW_BIN/pgw-api" 2>&1)
check "a missing key file stops pgw-api (exit $?)" test $? -ne 0
check_match "... naming the variable" "$out" "PGW_TLS_KEY: cannot read"
PGW_METRICS_TOKEN=metrics-token-0123456789abcdef PGW_TLS_CERT=$LAB_DIR/cert.pem PGW_TLS_KEY=$LAB_DIR/key.pem \
	lab_bg gw pgw-api "$PGW_BIN/pgw-api"
check "pgw-api listening on https" wait_for 5 grep -q 'listening on https://127.0.0.1:8443' "$LAB_DIR/pgw-api.log"
check_eq "HTTPS answers" "$(lab_exec gw curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:8443/healthz)" "200"
check_match "... with the certificate given" "$(lab_exec gw curl -skv https://127.0.0.1:8443/healthz 2>&1)" "subject: CN=pgw.lab"
check_fails "plain HTTP gets no answer" lab_exec gw curl -s -m 2 -o /dev/null http://127.0.0.1:8443/healthz
hdr=$(lab_exec gw curl -sk -D - -o /dev/null -H 'Content-Type: application/json' \
	-d '{"username":"admin","password":"admin-password-1"}' https://127.0.0.1:8443/api/v1/auth/login)
check_match "the session cookie is Secure over HTTPS" "$hdr" "Set-Cookie: pgw_session=.*; Secure"
mcode() { lab_exec gw curl -sk -o /dev/null -w '%{http_code}' "$@" https://127.0.0.1:8443/metrics; }
check_eq "PGW_METRICS_TOKEN set: /metrics without it is 401" "$(mcode)" "401"
check_eq "... with a wrong token 401" "$(mcode -H 'Authorization: Bearer metrics-token-0123456789abcdeX')" "401"
check_eq "... with the token 200" "$(mcode -H 'Authorization: Bearer metrics-token-0123456789abcdef')" "200"
check "... and the token never reaches the log" bash -c "! grep -q metrics-token-0123456789abcdef $LAB_DIR/pgw-api.log"
# plain HTTP beyond loopback: pgw-api says what it means
# (a run dir of its own: the first pgw-api holds api.sock in the lab's)
PGW_RUN_DIR=$LAB_DIR/run-plain PGW_API_LISTEN=198.51.100.1:8081 lab_bg gw pgw-api-plain "$PGW_BIN/pgw-api"
check "plain HTTP on a non-loopback address: a startup warning says so, and how to mend it" \
	wait_for 5 grep -q 'serving plain HTTP on 198.51.100.1: .*set PGW_TLS_CERT and PGW_TLS_KEY (or .*PGW_TLS_OFFLOAD=true)' "$LAB_DIR/pgw-api-plain.log"
check_fails "... and none on loopback or with TLS" grep -q 'serving plain HTTP' "$LAB_DIR/pgw-api.log"
# behind a reverse proxy that serves HTTPS (PGW_TLS_OFFLOAD): plain HTTP here, Secure cookies
login_cookie() { lab_exec gw curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
	-d '{"username":"admin","password":"admin-password-1"}' "http://$1/api/v1/auth/login" | grep -i '^set-cookie: pgw_session='; }
PGW_RUN_DIR=$LAB_DIR/run-offload PGW_TLS_OFFLOAD=true PGW_API_LISTEN=127.0.0.1:8082 lab_bg gw pgw-api-offload "$PGW_BIN/pgw-api"
check "PGW_TLS_OFFLOAD=true: pgw-api listening on plain HTTP, and its log says for a TLS proxy" \
	wait_for 5 grep -q 'listening on http://127.0.0.1:8082 (behind a TLS proxy, PGW_TLS_OFFLOAD' "$LAB_DIR/pgw-api-offload.log"
check_match "... its session cookie is Secure (the browser's side is HTTPS)" "$(login_cookie 127.0.0.1:8082)" "; Secure"
PGW_RUN_DIR=$LAB_DIR/run-plain2 PGW_API_LISTEN=127.0.0.1:8083 lab_bg gw pgw-api-plain2 "$PGW_BIN/pgw-api"
check "without it, on plain HTTP ..." wait_for 5 grep -q 'listening on http://127.0.0.1:8083' "$LAB_DIR/pgw-api-plain2.log"
check_fails "... not said to be behind a TLS proxy" grep -q 'TLS proxy' "$LAB_DIR/pgw-api-plain2.log"
plain=$(login_cookie 127.0.0.1:8083)
check_match "... a session cookie ..." "$plain" "^[Ss]et-[Cc]ookie: pgw_session=[^;]"
check_fails "... not marked Secure (a browser on plain HTTP would not keep it)" grep -q "; Secure" <<<"$plain"
PGW_RUN_DIR=$LAB_DIR/run-offload2 PGW_TLS_OFFLOAD=true PGW_API_LISTEN=198.51.100.1:8084 lab_bg gw pgw-api-offload2 "$PGW_BIN/pgw-api"
check "PGW_TLS_OFFLOAD on a non-loopback address: the warning names the hop from the TLS proxy" \
	wait_for 5 grep -q 'serving plain HTTP on 198.51.100.1 behind a TLS proxy (PGW_TLS_OFFLOAD)' "$LAB_DIR/pgw-api-offload2.log"
finish
