#!/usr/bin/env bash
# Scenario (issue 18): health that does not lie. A working proxy that cannot reach one
# destination (microsocks answers SOCKS5 0x05 for a closed port) has not failed: the forwarder
# counts it by destination and kind, and tells pgw-healthd only when 3 distinct destinations
# failed with nothing answered in between. A proxy that says "succeeded" before it has connected
# (shadowsocks' ss-local) and then closes with nothing sent back is caught as
# closed_after_connect. A down proxy's reason keeps its detail (the SOCKS5 reply code) in the
# API, pgwctl and /metrics.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_ss || { echo "# ss failed to start"; exit 1; }
LAB_DANTE_RULES="socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = 25 }" lab_start_dante || { echo "# dante failed to start"; exit 1; }
lab_api_env
ctl=$PGW_BIN/pgwctl
C=192.168.2.10 CS=192.168.2.11 CD=192.168.2.12
lab_db "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080),
	(2, 'ss', 'socks5', '$LAB_SS', 1080), (3, 'dante', 'socks5', '$LAB_DANTE', 1080);
	INSERT INTO mappings (client_ip, proxy_id) VALUES ('$C', 1), ('$CS', 2), ('$CD', 3)"
$ctl settings set health_interval 300 >/dev/null # only the forwarder's reports probe again
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
relays() { [ "$(lab_exec lan curl -s -m 3 --interface "$1" "http://$LAB_WEB/ip")" = "$2" ]; }
check "the client relays through microsocks" wait_for 10 relays $C $LAB_SOCKS_NOAUTH
check "the other through shadowsocks" wait_for 10 relays $CS $LAB_SS_SERVER
stats() { jq -r "$1" <($PGW_BIN/pgwctl stats); }
reports() { grep -c 'the forwarder saw it fail' "$LAB_DIR/pgw-healthd.log"; }

# the proxy's policy for one destination (dante blocks port 25: SOCKS5 0x02, not allowed by its
# ruleset) is that destination's failure too: before, each one was the proxy's, and healthd
# probed it again and forgot its pipelining, as often as a device tried the port
check "a third client relays through dante" wait_for 10 relays $CD $LAB_DANTE
for _ in 1 2 3; do lab_exec lan curl -s -m 3 --interface $CD "http://$LAB_WEB:25/" >/dev/null 2>&1; sleep 0.4; done
check "a port dante's ruleset blocks: logged with the SOCKS5 reply code" \
	wait_for 3 bash -c "[ \$(grep -c 'client=$CD:[0-9]* dst=$LAB_WEB:25 .*close=upstream:proxy_refused (SOCKS5 0x02 ' $LAB_DIR/pgw-forwarder.log) = 3 ]"
check "... counted as the destination's failure (socks5_0x02_not_allowed)" \
	wait_for 3 bash -c "[ \"\$(jq -r '.destination_failures.socks5_0x02_not_allowed' <($PGW_BIN/pgwctl stats))\" = 3 ]"
check_eq "... not told to pgw-healthd as the proxy's" "$(reports)" 0

# one destination refusing, again and again: the destination's failure, not the proxy's
for _ in 1 2 3 4 5; do lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB:81/" >/dev/null 2>&1; done
check "each refused connection is logged with the SOCKS5 reply code" \
	wait_for 3 bash -c "[ \$(grep -c 'client=$C:[0-9]* dst=$LAB_WEB:81 .*close=upstream:proxy_refused (SOCKS5 0x05 connection refused)' $LAB_DIR/pgw-forwarder.log) = 5 ]"
check "... counted as destination failures by kind" \
	wait_for 3 bash -c "[ \"\$(jq -r '.destination_failures.socks5_0x05_connection_refused' <($PGW_BIN/pgwctl stats))\" = 5 ]"
check_eq "... and not told to pgw-healthd (one destination)" "$(reports)" 0
check_eq "... nor reported" "$(stats .destination_reports)" 0
# an answered connection between failures: they are forgotten
lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB:82/" >/dev/null 2>&1
check "a connection through the proxy that is answered" relays $C $LAB_SOCKS_NOAUTH
lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB:83/" >/dev/null 2>&1
refused() { [ "$(stats .destination_failures.socks5_0x05_connection_refused)" = "$1" ]; }
check "the forwarder counted both (7 refused)" wait_for 3 refused 7
check_eq "two more destinations, with an answer in between: still not the proxy's failure" \
	"$(stats .destination_reports) $(reports)" "0 0"
# three distinct destinations in a row: the proxy's failure, told to healthd once
check "an answered connection forgets the last failure (port 83)" relays $C $LAB_SOCKS_NOAUTH
sleep 1.1 # a probe now is seen by its checked_at
checked=$(lab_db 'SELECT status || checked_at FROM proxy_health WHERE proxy_id = 1')
for p in 84 85; do lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB:$p/" >/dev/null 2>&1; done
check "(the forwarder counted both: 9 refused)" wait_for 3 refused 9
check_eq "... two after it: not yet the proxy's failure (port 83 was forgotten)" "$(stats .destination_reports) $(reports)" "0 0"
lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB:86/" >/dev/null 2>&1
check "three destinations failing in a row: pgw-healthd is told, with the reason" \
	wait_for 3 grep -q 'proxy 1: the forwarder saw it fail (3 destinations failed (socks5_0x05_connection_refused)); checking now' "$LAB_DIR/pgw-healthd.log"
wait_for 3 refused 10
check_eq "... once (the forwarder's count of reports, and healthd's log)" "$(stats .destination_reports) $(reports)" "1 1"
check "... which probes it: up (the proxy works)" \
	wait_for 5 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status || checked_at FROM proxy_health WHERE proxy_id = 1')\" != '$checked' ] && \
		[ \"\$(sqlite3 $PGW_DB 'SELECT status FROM proxy_health WHERE proxy_id = 1')\" = up ]"
check "... and its client relays on" relays $C $LAB_SOCKS_NOAUTH

# shadowsocks says "succeeded" at once, before ss-server has tried the destination; a refused
# one is a close with nothing sent back
rc=0
lab_exec lan curl -s -m 5 --interface $CS "http://$LAB_WEB:81/" >/dev/null 2>&1 || rc=$?
check "ss-local's client to a closed port gets an empty reply (curl exit $rc)" test "$rc" = 52
check "... logged as closed_after_connect" \
	wait_for 3 grep -q "client=$CS:[0-9]* dst=$LAB_WEB:81 .* down=0 .*closed_after_connect" "$LAB_DIR/pgw-forwarder.log"
check "... and counted" \
	wait_for 3 bash -c "[ \"\$(jq -r '.destination_failures.closed_after_connect' <($PGW_BIN/pgwctl stats))\" -ge 1 ]"
check "a connection through it that is answered is no such thing" relays $CS $LAB_SS_SERVER
check "... (logged when it ends" wait_for 3 grep -q "client=$CS:[0-9]* dst=$LAB_WEB:80 " "$LAB_DIR/pgw-forwarder.log"
check_fails "... not as closed_after_connect)" grep -q "client=$CS:[0-9]* dst=$LAB_WEB:80 .*closed_after_connect" "$LAB_DIR/pgw-forwarder.log"
# a client that opens a connection and closes it without waiting (a browser's preconnect): the
# client's doing, not a failure at the destination
lab_exec lan socat -u /dev/null "TCP4:$LAB_WEB:81,bind=$CS" 2>/dev/null
check "a connection the client itself closes at once is logged" \
	wait_for 3 bash -c "[ \$(grep -c 'client=$CS:[0-9]* dst=$LAB_WEB:81 ' $LAB_DIR/pgw-forwarder.log) = 2 ]"
check_fails "... not as closed_after_connect" bash -c "grep 'client=$CS:[0-9]* dst=$LAB_WEB:81 ' $LAB_DIR/pgw-forwarder.log | tail -1 | grep -q closed_after_connect"
# pgw-api shares one answer of the forwarder's stats for up to a second: the last failures may
# take that long to show
counted() { metrics=$(lab_exec gw curl -s -H "$ADMIN" http://127.0.0.1:8080/metrics) && grep -q 'pgw_forwarder_destination_reports_total 1' <<<"$metrics"; }
wait_for 3 counted
check_match "/metrics: destination failures by kind" "$metrics" \
	'pgw_forwarder_destination_failures_total\{kind="socks5_0x05_connection_refused"\} 10'
check_match "/metrics: ... and the reports" "$metrics" 'pgw_forwarder_destination_reports_total 1'

# a health URL the proxy cannot reach: down, and the reason keeps the SOCKS5 reply code
$ctl settings set health_url "http://$LAB_WEB:81/ip" >/dev/null
check_match "pgwctl check: down with the SOCKS5 reply" "$($ctl check 1)" \
	'^proxy 1: down: proxy_refused \(SOCKS5 0x05 connection refused\)'
check_eq "the API's health row has it" \
	"$(lab_api GET /api/v1/health -H "$ADMIN" | cut -d' ' -f2- | jq -r '.items[] | select(.proxy_id == 1) | .last_error')" \
	"proxy_refused (SOCKS5 0x05 connection refused)"
check_match "/metrics: pgw_proxy_down_reason with the detail" "$(lab_exec gw curl -s -H "$ADMIN" http://127.0.0.1:8080/metrics)" \
	'pgw_proxy_down_reason\{proxy="socks-open",id="1",reason="proxy_refused \(SOCKS5 0x05 connection refused\)"\} 1'

# a reload that fails (the DB in a state the forwarder cannot read) is tried again every second
# until it works, with no change to ask for it (it waited for the next change: the forwarder
# kept an old table meanwhile, its clients' limits and quotas as they were). pgw-healthd is
# stopped first: its probe of the proxy the forwarder saw failing writes a change whose reload
# could come before the retry (CI caught that race once), and then nothing would show the retry
lab_stop_pid "$(awk '$2 == "pgw-healthd" {print $1}' "$LAB_DIR/pids")"
lab_db "ALTER TABLE client_quota RENAME TO client_quota_away"
$ctl notify mappings >/dev/null
check "the forwarder cannot load the mappings: said once" wait_for 3 grep -q 'reload (event) failed, keeping the current table (trying again every second' "$LAB_DIR/pgw-forwarder.log"
lab_db "ALTER TABLE client_quota_away RENAME TO client_quota" # and nothing notified
check "... the DB readable again: loaded by the retry within 3 s, with nothing notified" \
	wait_for 3 grep -q 'mappings loaded (retry): [0-9]* clients (recovered)' "$LAB_DIR/pgw-forwarder.log"
check_eq "... the failure said once" "$(grep -c 'reload (.*) failed' "$LAB_DIR/pgw-forwarder.log")" 1
finish
