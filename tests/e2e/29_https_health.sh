#!/usr/bin/env bash
# Scenario (issue 18): an https health URL. pgw-healthd speaks TLS through the proxy (SOCKS5 and
# HTTP CONNECT) to nginx with a certificate of the lab CA (health_ca_file), and learns the exit
# IP; a certificate for another name, a self-signed one, or the lab CA missing from the trust
# store (the system's) take the proxy down with a reason that says what was wrong. Several
# health URLs: the proxy is up when any answers (tried in turn).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_https || { echo "# nginx with TLS failed to start"; exit 1; }
ctl=$PGW_BIN/pgwctl
db() { lab_db "$@"; }
$ctl settings set health_interval 600 >/dev/null # probes on demand only (pgwctl check)
$ctl settings set health_timeout 2 >/dev/null
$ctl settings set health_ca_file "$LAB_DIR/ca.pem" >/dev/null
$ctl settings set health_url "https://$LAB_WEB/ip" >/dev/null
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;"
lab_bg gw pgw-healthd "$PGW_BIN/pgw-healthd"
check "pgw-healthd running" wait_for 5 grep -q 'probing 3 proxies' "$LAB_DIR/pgw-healthd.log"
sleep 0.5
check_match "https through a SOCKS5 proxy with auth: up, the exit IP read" "$($ctl check 1)" "^proxy 1: up, [0-9]+ ms, exit ip $LAB_SOCKS_AUTH\$"
check_match "https through an open SOCKS5 proxy: up" "$($ctl check 2)" "^proxy 2: up, [0-9]+ ms, exit ip $LAB_SOCKS_NOAUTH\$"
check_match "https through an HTTP CONNECT proxy: up" "$($ctl check 3)" "^proxy 3: up, [0-9]+ ms, exit ip $LAB_HTTP_PROXY\$"
setting() { $ctl settings set "$1" "$2" >/dev/null && $ctl notify settings >/dev/null && sleep 0.3; }
setting health_url "https://$LAB_WEB:8443/ip"
why() { db 'SELECT status || " " || last_error FROM proxy_health WHERE proxy_id = 1'; }
check_match "a certificate for another name: down" "$($ctl check 1)" "^proxy 1: down: tls: TLS certificate not accepted"
check_match "... and the reason (the API's last_error) says what was wrong" "$(why)" "^down tls: TLS certificate not accepted: .*(hostname|name)"
setting health_url "https://$LAB_WEB:9443/ip"
check_match "a self-signed certificate: down" "$($ctl check 1)" "^proxy 1: down: tls: TLS certificate not accepted"
check_match "... not trusted, says the reason" "$(why)" "^down tls: TLS certificate not accepted: .*(signer|trusted|issuer)"
setting health_url "https://$LAB_WEB/ip"
check_match "(the lab's certificate for its name, the lab CA trusted: up)" "$($ctl check 1)" "^proxy 1: up, [0-9]+ ms, exit ip $LAB_SOCKS_AUTH\$"
setting health_ca_file ""
check_match "the lab CA not in the trust store (the system's): down" "$($ctl check 1)" "^proxy 1: down: tls: TLS certificate not accepted"
setting health_ca_file "$LAB_DIR/ca.pem"
check_match "... and up again with it" "$($ctl check 1)" "^proxy 1: up, [0-9]+ ms, exit ip $LAB_SOCKS_AUTH\$"
# several health URLs: up when any answers, tried in turn
setting health_url "https://$LAB_WEB:9443/ip, http://$LAB_WEB:81/ip, https://$LAB_WEB/ip"
check_match "three health URLs, the first two failing (a bad certificate, a closed port): up, through the third" \
	"$($ctl check 1)" "^proxy 1: up, [0-9]+ ms, exit ip $LAB_SOCKS_AUTH\$"
check_match "... through an HTTP CONNECT proxy too" "$($ctl check 3)" "^proxy 3: up, [0-9]+ ms, exit ip $LAB_HTTP_PROXY\$"
setting health_url "https://$LAB_WEB:9443/ip, http://$LAB_WEB:81/ip"
check_match "all of them failing: down, with the last one's reason" "$($ctl check 1)" "^proxy 1: down: proxy_refused"
# exit pinning trusts https alone when the list has it: over plain http the proxy could forge the
# exit address in the body, so a TLS failure does not fall through to an http URL that answers
setting health_url "https://$LAB_WEB:9443/ip, http://$LAB_WEB/ip"
check_match "unpinned: a TLS failure, then an http URL that answers: up through it" "$($ctl check 1)" "^proxy 1: up, "
db "UPDATE proxies SET expected_exit = '$LAB_SOCKS_AUTH/32' WHERE id = 1"
$ctl notify proxies >/dev/null
sleep 0.3
check_match "pinned (expected_exit, the right one): the same list is down, for the https URL's reason" \
	"$($ctl check 1)" "^proxy 1: down: tls: TLS certificate not accepted"
setting health_url "http://$LAB_WEB/ip"
check_match "... with http URLs only, pinning judges them as before: up" "$($ctl check 1)" "^proxy 1: up, "
db "UPDATE proxies SET expected_exit = '' WHERE id = 1"
$ctl notify proxies >/dev/null
sleep 0.3
check_match "more than four URLs are refused" \
	"$($ctl settings set health_url "http://a/,http://b/,http://c/,http://d/,http://e/" 2>&1)" "up to 4 of them"
check_match "a health_ca_file that is not an absolute path is refused" "$($ctl settings set health_ca_file ca.pem 2>&1)" "must be empty or an absolute path"
finish
