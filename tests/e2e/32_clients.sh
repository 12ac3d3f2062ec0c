#!/usr/bin/env bash
# Scenario (issue 19, first part): GET /api/v1/clients — every mapped client with its state and,
# when blocked, the reason: mapping_disabled, proxy_disabled, proxy_down (with the probe's
# detail), exit_ip_mismatch; and its usage as the forwarder counted it (bytes
# each way, connections), equal to what the client measured.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
head -c 3000000 /dev/urandom >"$LAB_DIR/www/files/3m.bin"
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
	INSERT INTO proxies (id, name, type, host, port) VALUES (4, 'nowhere', 'socks5', '$LAB_SOCKS_NOAUTH', 1081),
	(5, 'off', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
	UPDATE proxies SET enabled = 0 WHERE id = 5;
	UPDATE proxies SET expected_exit = '203.0.113.99/32' WHERE id = 3;
	INSERT INTO mappings (client_ip, proxy_id, enabled, label) VALUES ('192.168.2.10', 2, 1, 'laptop'),
	('192.168.2.11', 2, 0, 'tv'), ('192.168.2.12', 4, 1, ''), ('192.168.2.13', 3, 1, ''),
	('192.168.2.14', 5, 1, ''), ('fd00:2::10', 2, 1, 'laptop6')"
$ctl settings set health_interval 2 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'viewer-password-1' | $ctl user add viewer --role viewer --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
VIEWER=$(lab_api_login viewer viewer-password-1)
body() { cut -d' ' -f2-; }
reasons() {
	lab_api GET /api/v1/clients -H "$VIEWER" | body |
		jq -r '[.items[] | .client_ip + "=" + .state + ":" + (.reason // "-")] | join(" ")'
}
want="192.168.2.10=active:- 192.168.2.11=blocked:mapping_disabled 192.168.2.12=blocked:proxy_down 192.168.2.13=blocked:exit_ip_mismatch 192.168.2.14=blocked:proxy_disabled fd00:2::10=active:-"
reasons_are() { [ "$(reasons)" = "$want" ]; }
check "every client's state and reason (a viewer may read them)" wait_for 10 reasons_are
echo "# $(reasons)"
one=$(lab_api GET /api/v1/clients/192.168.2.12 -H "$VIEWER")
check_match "one client: its proxy down, with the probe's detail" "$one" '^200 .*"reason": *"proxy_down"'
check_eq "... the detail is healthd's reason" "$(body <<<"$one" | jq -r .reason_detail)" \
	"$(lab_db 'SELECT last_error FROM proxy_health WHERE proxy_id = 4')"
check_match "an IPv6 client by any spelling of its address" \
	"$(lab_api GET /api/v1/clients/fd00:2:0:0:0:0:0:10 -H "$VIEWER")" '^200 .*"client_ip": *"fd00:2::10"'
check_match "an unmapped address: 404" "$(lab_api GET /api/v1/clients/192.168.2.99 -H "$VIEWER")" '^404 '
check_match "not an address: 404 (no such client)" "$(lab_api GET /api/v1/clients/laptop -H "$VIEWER")" '^404 '
check_match "only GET (405)" "$(lab_api DELETE /api/v1/clients/192.168.2.10 -H "$VIEWER")" '^405 '
check_match "no credentials: 401" "$(lab_api GET /api/v1/clients)" '^401 '

# usage: what the forwarder counted for the client, against what it measured
check "the laptop relays" wait_for 10 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
before=$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .usage.bytes_down)
got=$(lab_exec lan curl -s -o /dev/null -w '%{size_download}' --interface 192.168.2.10 "http://$LAB_WEB/files/3m.bin")
check_eq "the client downloads 3,000,000 bytes" "$got" 3000000
sleep 1.5 # the forwarder writes its counters every second
after=$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .usage.bytes_down)
delta=$((after - before))
echo "# forwarder counted $delta bytes down for a 3,000,000-byte body (plus HTTP headers)"
check "usage: bytes down within 1 % of what the client measured ($delta)" \
	test "$delta" -ge 3000000 -a "$delta" -le 3030000
check_match "usage: connections counted" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq -c .usage)" '"connections":[2-9]'
finish
