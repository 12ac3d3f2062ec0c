#!/usr/bin/env bash
# Scenario (issue 19, first part): GET /api/v1/clients — every mapped client with its state and,
# when blocked, the reason: mapping_disabled, proxy_disabled, proxy_down (with the probe's
# detail), exit_ip_mismatch; its usage as the forwarder counted it (bytes each
# way, connections), equal to what the client measured; its connection limits (max_conns,
# new_conns_per_s); its usage history in minute/hour buckets, surviving restarts of pgw-api and
# pgw-forwarder.
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
# the forwarder writes its counters every second: wait for the whole body to be counted
down_now() { lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .usage.bytes_down; }
all_counted() { after=$(down_now) && [ "$after" -ge $((before + 3000000)) ]; }
wait_for 5 all_counted
delta=$((after - before))
echo "# forwarder counted $delta bytes down for a 3,000,000-byte body (plus HTTP headers)"
check "usage: bytes down within 1 % of what the client measured ($delta)" \
	test "$delta" -ge 3000000 -a "$delta" -le 3030000
check_eq "usage: connections counted" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq '.usage.connections >= 2')" true

# limits: one client cannot take every forwarder slot
ADMIN=$(lab_api_login admin admin-password-1)
v6exit=$(lab_exec lan curl -s -m 3 --interface fd00:2::10 "http://[$LAB_WEB6]/ip") # through its proxy
M1=$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .mapping_id)
n=$(lab_fwd_reloads)
check_match "max_conns 3 on the laptop's mapping" \
	"$(lab_api PATCH /api/v1/mappings/$M1 -H "$ADMIN" -H 'Content-Type: application/json' -d '{"max_conns":3}')" \
	'^200 .*"max_conns": *3, *"new_conns_per_s": *0'
check_match "... out of range: 400" \
	"$(lab_api PATCH /api/v1/mappings/$M1 -H "$ADMIN" -H 'Content-Type: application/json' -d '{"max_conns":-1}')" '^400 '
head -c 8M /dev/urandom >"$LAB_DIR/www/files/big.bin"
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
pids=""
for i in 1 2 3 4 5; do # (ip netns exec execs curl: $! is the download itself, to be killed)
	ip netns exec "$(lab_ns lan)" curl -s -o /dev/null -m 20 --interface 192.168.2.10 "http://$LAB_WEB/slow/big.bin" &
	pids="$pids $!"
	sleep 0.3
done
refused() { grep -c "client=$1:[0-9]* .*close=$2" "$LAB_DIR/pgw-forwarder.log"; }
open_now() { ip netns exec "$(lab_ns gw)" ss -Htn state established '( sport = :12345 )' | grep -c "192.168.2.10:"; }
check "five downloads at once: two are refused (close=client_max_conns)" wait_for 5 bash -c "[ \$(grep -c 'client=192.168.2.10:[0-9]* .*close=client_max_conns' $LAB_DIR/pgw-forwarder.log) = 2 ]"
check_eq "... three are relayed" "$(open_now)" 3
v6now=$(lab_exec lan curl -s -m 3 --interface fd00:2::10 "http://[$LAB_WEB6]/ip")
check "... another client is not limited by it (through its proxy: ${v6now:-nothing}, as before: ${v6exit:-nothing})" \
	test -n "$v6exit" -a "$v6exit" != fd00:2::10 -a "$v6now" = "$v6exit"
kill $pids 2>/dev/null
wait $pids 2>/dev/null
none_open() { [ "$(open_now)" = 0 ]; }
check "the downloads are over (killed)" wait_for 5 none_open
n=$(lab_fwd_reloads)
check_match "new_conns_per_s 2 (and max_conns back to the setting's)" \
	"$(lab_api PATCH /api/v1/mappings/$M1 -H "$ADMIN" -H 'Content-Type: application/json' -d '{"max_conns":0,"new_conns_per_s":2}')" '^200 '
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
sleep 1.2 # the bucket is full
burst="" b0=$(lab_ms)
for i in $(seq 1 12); do
	lab_exec lan curl -s -m 3 --interface 192.168.2.10 "http://$LAB_WEB/ip" >"$LAB_DIR/burst.$i" 2>/dev/null &
	burst="$burst $!"
done
wait $burst # (not a bare wait: the daemons are this shell's children too)
b1=$(lab_ms)
most=$((2 + (2 * (b1 - b0) + 999) / 1000)) # the bucket's 2, and what refills while the burst lasts
# (a slow rate, so that the bound stays under 12 even for a burst that takes seconds to start)
ok=$(cat "$LAB_DIR"/burst.* | grep -c "^$LAB_SOCKS_NOAUTH\$")
echo "# 12 connections in $((b1 - b0)) ms from a client limited to 2/s: $ok relayed (at most $most), $(refused 192.168.2.10 client_rate) refused"
check "twelve connections in a burst: two and what refilled meanwhile relayed ($ok <= $most < 12), the rest refused (close=client_rate)" \
	test "$ok" -ge 2 -a "$ok" -le "$most" -a "$most" -lt 12 -a "$(refused 192.168.2.10 client_rate)" -ge $((12 - most))
sleep 1.2
check "a second later it may connect again" bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
check_eq "the refusals are in its usage (as many as the access log has)" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .usage.refused)" \
	"$(grep -c 'client=192.168.2.10:[0-9]* .*close=client_\(max_conns\|rate\)' "$LAB_DIR/pgw-forwarder.log")"
# usage history (0020): what the forwarder counted, in minute buckets, surviving restarts
hist() { lab_api GET "/api/v1/clients/192.168.2.10/usage${1:-}" -H "$ADMIN" -H "X-Pgw-Org: ${ORG:-1}" | body; }
counted() { lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq .usage.bytes_down; }
in_step() { [ "$(hist | jq .total.bytes_down)" = "$(counted)" ]; }
check "the history's bytes down equal the forwarder's count (flushed every 5 s)" wait_for 12 in_step
h=$(hist)
check_eq "... in minute buckets by default (the last day)" "$(jq -c '[.step, (.items | length > 0), (.items[0].t % 60)]' <<<"$h")" "[60,true,0]"
total=$(jq .total.bytes_down <<<"$h")
check_eq "the same in hour buckets" "$(hist '?step=3600' | jq .total.bytes_down)" "$total"
check_match "as CSV" "$(lab_api GET '/api/v1/clients/192.168.2.10/usage?format=csv' -H "$VIEWER")" '^200 t,bytes_up,bytes_down,connections'
check_match "a step that is not kept: 400" "$(lab_api GET '/api/v1/clients/192.168.2.10/usage?step=300' -H "$VIEWER")" '^400 '
check_match "from after to: 400" "$(lab_api GET '/api/v1/clients/192.168.2.10/usage?from=20&to=10' -H "$VIEWER")" '^400 '
check_match "an unmapped client has no history: 404" "$(lab_api GET /api/v1/clients/192.168.2.99/usage -H "$VIEWER")" '^404 '
lab_stop_pid "$(awk '$2 == "pgw-api" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-api-2 "$PGW_BIN/pgw-api"
check "pgw-api restarted" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api-2.log"
VIEWER=$(lab_api_login viewer viewer-password-1)
check_eq "the history survives a restart of pgw-api" "$(hist | jq .total.bytes_down)" "$total"
lab_stop_pid "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-forwarder-2 "$PGW_BIN/pgw-forwarder"
check "pgw-forwarder restarted" wait_for 10 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
got=$(lab_exec lan curl -s -o /dev/null -w '%{size_download}' --interface 192.168.2.10 "http://$LAB_WEB/files/3m.bin")
check_eq "another 3,000,000 bytes through the new forwarder" "$got" 3000000
grown() { local t; t=$(hist | jq .total.bytes_down); [ "$t" -ge $((total + 3000000)) ]; }
check "the history adds them up (a new forwarder counts from 0)" wait_for 12 grown
t2=$(hist | jq .total.bytes_down)
echo "# history: $total bytes down, then $t2 after a forwarder restart and 3,000,000 more"
check "... within 1 % ($((t2 - total)) for 3,000,000)" test $((t2 - total)) -le 3030000

# an address given up by one organisation and mapped by another: its history and the forwarder's
# counters are not the new owner's to see
# (the laptop downloading until its mapping goes: its last seconds, counted after the delete,
# are not written to a history nobody holds)
J='Content-Type: application/json'
lab_exec lan curl -s -o /dev/null -w '%{size_download}' -m 8 --interface 192.168.2.10 "http://$LAB_WEB/slow/3m.bin" >"$LAB_DIR/cut.size" &
dl=$!
sleep 2
for ip in 192.168.2.10 192.168.2.11 192.168.2.12 192.168.2.13 192.168.2.14; do
	m=$(lab_api GET /api/v1/clients/$ip -H "$ADMIN" | body | jq .mapping_id)
	lab_api DELETE /api/v1/mappings/$m -H "$ADMIN" >/dev/null
done
wait "$dl"
check "(the laptop was downloading when its mapping went: some bytes, not all)" \
	bash -c "s=\$(cat $LAB_DIR/cut.size); [ \"\${s:-0}\" -gt 0 ] && [ \"\$s\" -lt 3000000 ]"
sleep 8 # (pgw-api adds what it was told at most 5 s late, the forwarder tells it every 2 s)
check_eq "the laptop's mapping deleted while it downloaded: its history with it, none written after" \
	"$(lab_db "SELECT count(*) FROM client_usage WHERE client_ip = '192.168.2.10'")" 0
check_match "organisation 1 keeps 192.168.2.0/29" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ADMIN" -H "$J" -d '{"networks":["192.168.2.0/29","fd00:2::/64"]}')" '^200 '
check_match "acme takes 192.168.2.8/29" \
	"$(lab_api POST /api/v1/orgs -H "$ADMIN" -H "$J" -d '{"name":"acme","networks":["192.168.2.8/29"]}')" '^201 '
out=$(lab_api POST /api/v1/proxies -H "$ADMIN" -H 'X-Pgw-Org: 2' -H "$J" -d "{\"name\":\"acme-socks\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080}")
check_match "... with a proxy" "$out" '^201 '
check_match "acme maps 192.168.2.10" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H 'X-Pgw-Org: 2' -H "$J" -d "{\"client_ip\":\"192.168.2.10\",\"proxy_id\":$(body <<<"$out" | jq .id)}")" '^201 '
# at once (before the forwarder has reloaded) and on through its reload: never the old owner's counts
seen=""
for _ in 1 2 3 4 5 6 7 8; do
	seen+="$(lab_api GET /api/v1/clients/192.168.2.10 -H "$ADMIN" -H 'X-Pgw-Org: 2' | body | jq -c '[.usage.bytes_down, .usage.connections]') "
	sleep 0.25
done
check_eq "acme sees none of the forwarder's counts of organisation 1's laptop (8 reads over 2 s from the moment it maps it)" \
	"$seen" "$(printf '[0,0] %.0s' 1 2 3 4 5 6 7 8)"
check_eq "... nor any history" "$(ORG=2 hist | jq -c .total)" '{"bytes_up":0,"bytes_down":0,"connections":0}'
check "acme's client relays" bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
grown_a() { [ "$(lab_api GET /api/v1/clients/192.168.2.10 -H "$ADMIN" -H 'X-Pgw-Org: 2' | body | jq '.usage.connections')" = 1 ]; }
check "... and its counts start from there (1 connection)" wait_for 5 grown_a
finish
