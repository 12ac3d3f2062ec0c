#!/usr/bin/env bash
# Scenario (issue 19, quotas): a mapping's quota_bytes per quota_period. A 20 MB quota cuts a
# download at 20 MB (+-1 MB) in pgw-forwarder, then blocks the client like a client of a dead
# proxy (reason quota_exceeded, the agent's sets, 0 packets on the WAN) until an admin grants
# more (the next download cut at the grant) or resets it; an event at 80 % and at the block;
# the count survives restarts of pgw-forwarder and pgw-api (the cut still at the quota's byte);
# the period begins at midnight in the setting quota_timezone; usage history and quota count the
# same bytes.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
head -c 50000000 /dev/urandom >"$LAB_DIR/www/files/50m.bin"
head -c 8000000 /dev/urandom >"$LAB_DIR/www/files/8m.bin"
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES"
$ctl settings set health_interval 2 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'viewer-password-1' | $ctl user add viewer --role viewer --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
VIEWER=$(lab_api_login viewer viewer-password-1)
J='Content-Type: application/json'
body() { cut -d' ' -f2-; }
lab_exec gw curl -s -N -m 300 -H "$ADMIN" http://127.0.0.1:8080/api/v1/events >"$LAB_DIR/sse.log" &
SSE=$!

check_match "quota_period must be day, week or month" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"quota_bytes":1000,"quota_period":"year"}')" '^400 '
r=$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"quota_bytes":20000000,"quota_period":"day","label":"capped"}')
check_match "a client with a quota of 20 MB a day" "$r" '^201 .*"quota_bytes": *20000000, *"quota_period": *"day"'
M1=$(body <<<"$r" | jq .id)
lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.11","proxy_id":2,"label":"free"}' >/dev/null
relays() { [ "$(lab_exec lan curl -s -m 3 --interface "$1" "http://$LAB_WEB/ip")" = "$LAB_SOCKS_NOAUTH" ]; }
both() { relays 192.168.2.10 && relays 192.168.2.11; }
check "both relay" wait_for 10 both
q() { lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq -c "$1"; }
midnight=$(date -u -d 'today 00:00' +%s)
check_eq "its quota in /clients: the day began at midnight UTC, nothing used" \
	"$(q '.quota | [.bytes, .period, .period_start, .used, .limit, .exceeded]')" "[20000000,\"day\",$midnight,0,20000000,false]"
# pgw-api notes the bytes of a client with a quota every 2 s: let the ~200 bytes settle
sleep 2.5
dl() { lab_exec lan curl -s -o /dev/null -m 60 -w '%{size_download}' --interface 192.168.2.10 "http://$LAB_WEB/files/$1"; }

# the cut, at the byte
lab_capture_start quota || exit 1
used0=$(q .quota.used)
out=$(lab_exec lan curl -s -o /dev/null -m 60 -w '%{size_download} %{exitcode}' --interface 192.168.2.10 "http://$LAB_WEB/files/50m.bin")
got=${out% *}
echo "# a 50,000,000-byte download by a client with a 20,000,000-byte quota (${used0} used before): ${got} bytes arrived"
check "the download is cut at 20 MB +-1 MB ($got bytes)" test "$got" -ge 19000000 -a "$got" -le 21000000
check_eq "... with a reset (curl exit 56), not a FIN (18: a short reply)" "${out#* }" 56
check "the forwarder logged the cut (close=quota_exceeded)" grep -q 'client=192.168.2.10:[0-9]* .*close=quota_exceeded' "$LAB_DIR/pgw-forwarder.log"
blocked() { [ "$(q '[.state, .reason] | join(" ")')" = '"blocked quota_exceeded"' ]; }
check "then the client is blocked: reason quota_exceeded" wait_for 10 blocked
in_set() { lab_exec gw nft list set inet pgw blocked4 | grep -q '192.168.2.10'; }
check "... in the kernel (blocked4)" wait_for 5 in_set
check_fails "... it cannot connect" lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip"
check "... the unlimited client still can" relays 192.168.2.11
n=$(lab_capture_stop)
check_eq "0 client packets on the WAN" "$n" 0
used=$(q .quota.used)
echo "# quota used: $used of 20000000"
check "its used bytes: at least the quota, at most 1 MB over ($used)" test "$used" -ge 20000000 -a "$used" -le 21000000
hist=$(lab_api GET '/api/v1/clients/192.168.2.10/usage?step=86400' -H "$VIEWER" | body | jq '.total.bytes_up + .total.bytes_down')
check_eq "the usage history counts the same bytes as the quota" "$hist" "$used"
# the proxy's history: its clients' bytes (both clients here use proxy 2)
ptotal() { lab_api GET '/api/v1/proxies/2/usage?step=86400' -H "$VIEWER" | body | jq '.total.bytes_up + .total.bytes_down'; }
ctotal() { local a b; a=$(lab_api GET '/api/v1/clients/192.168.2.10/usage?step=86400' -H "$VIEWER" | body | jq '.total.bytes_up + .total.bytes_down')
	b=$(lab_api GET '/api/v1/clients/192.168.2.11/usage?step=86400' -H "$VIEWER" | body | jq '.total.bytes_up + .total.bytes_down')
	echo $((a + b)); }
proxy_sums() { [ "$(ptotal)" = "$(ctotal)" ]; }
check "the proxy's usage history holds its clients' bytes ($(ptotal))" wait_for 8 proxy_sums
check_match "... in minute buckets too" "$(lab_api GET /api/v1/proxies/2/usage -H "$VIEWER")" '^200 .*"proxy_id": *2, *"step": *60'
check_match "... and as CSV" "$(lab_api GET '/api/v1/proxies/2/usage?format=csv' -H "$VIEWER")" '^200 t,bytes_up,bytes_down,connections'
check_match "a proxy that does not exist: 404" "$(lab_api GET /api/v1/proxies/99/usage -H "$VIEWER")" '^404 '
check "the usage history is within 1 % of what the client measured (${got} received of ${hist} counted)" \
	awk -v g="$got" -v h="$hist" 'BEGIN { exit !(h >= g && h <= g * 1.01 + 2000) }'
# (the download went past 80 % and 100 % within one look: both events, in that order)
check_eq "events: the 80 % warning, then the block" \
	"$(grep -A1 '^event: quota' "$LAB_DIR/sse.log" | grep -o '"state":"[a-z_]*"' | head -2 | tr '\n' ' ')" \
	'"state":"warning" "state":"exceeded" '
m=$(lab_api GET /metrics -H "$ADMIN")
check_match "/metrics: the client's quota and what it used" "$m" "pgw_client_quota_used_bytes\\{client=\"192.168.2.10\"\\} $used"
check_match "... and its limit" "$m" 'pgw_client_quota_limit_bytes\{client="192.168.2.10"\} 20000000'
check "the block is logged" grep -q 'quota: 192.168.2.10 used [0-9]* of 20000000 bytes this day: blocked' "$LAB_DIR/pgw-api.log"

# a grant: unblocked at once; the next download is cut at the grant
check_match "a viewer cannot grant (403)" \
	"$(lab_api POST /api/v1/clients/192.168.2.10/quota/grant -H "$VIEWER" -H "$J" -d '{"bytes":5000000}')" '^403 '
check_match "a grant of nothing: 400" \
	"$(lab_api POST /api/v1/clients/192.168.2.10/quota/grant -H "$ADMIN" -H "$J" -d '{"bytes":0}')" '^400 '
r=$(lab_api POST /api/v1/clients/192.168.2.10/quota/grant -H "$ADMIN" -H "$J" -d '{"bytes":10000000}')
check_match "an admin grants 10 MB more" "$r" '^200 .*"granted": *10000000'
check_match "grants beyond 1 PB in a period: 409 (they added up to an int64 overflow)" \
	"$(lab_api POST /api/v1/clients/192.168.2.10/quota/grant -H "$ADMIN" -H "$J" -d '{"bytes":1000000000000000}')" '^409 .*exceed'
check_eq "... and the grant stays 10 MB" "$(q .quota.granted)" "10000000"
check "the client is active again" wait_for 5 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
used=$(q .quota.used)
got=$(dl 50m.bin)
echo "# after the grant (limit 30000000, ${used} used): ${got} bytes arrived"
left=$((30000000 - used))
check "the next download is cut at what the grant left ($got for $left)" test "$got" -ge $((left - 1000000)) -a "$got" -le $((left + 1000000))
check "blocked again" wait_for 10 blocked
check_eq "an audit row for the grant" "$(lab_db "SELECT count(*) FROM audit WHERE action = 'client.quota_grant' AND object_id = '192.168.2.10'")" 1

# a reset: nothing used; the quota counts across restarts of the forwarder and the API
r=$(lab_api POST /api/v1/clients/192.168.2.10/quota/reset -H "$ADMIN")
check_match "an admin resets it" "$r" '^200 .*"used": *0'
check "active again" wait_for 5 relays 192.168.2.10
got=$(dl 8m.bin)
check_eq "8,000,000 bytes downloaded" "$got" 8000000
settled() { [ "$(q .quota.used)" -ge 8000000 ]; }
check "... counted" wait_for 6 settled
sleep 2.5 # its last bytes counted too
u8=$(q .quota.used)
lab_stop_pid "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-forwarder-2 "$PGW_BIN/pgw-forwarder"
lab_stop_pid "$(awk '$2 == "pgw-api" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-api-2 "$PGW_BIN/pgw-api"
check "forwarder and api restarted" wait_for 10 bash -c "grep -q 'listening on http' $LAB_DIR/pgw-api-2.log && [ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface 192.168.2.10 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
VIEWER=$(lab_api_login viewer viewer-password-1)
ADMIN=$(lab_api_login admin admin-password-1)
used=$(q .quota.used)
# what the restarts' own check moved (a few hundred bytes), never the 8 MB twice
check "the 8 MB used before the restarts are still counted after them, once ($used for $u8 before)" \
	test "$u8" -ge 8000000 -a "$used" -ge "$u8" -a "$used" -le $((u8 + 50000))
got=$(dl 50m.bin)
left=$((20000000 - used))
echo "# after restarts (${used} used): ${got} bytes arrived for ${left} left"
check "after the restarts the cut is still at the quota ($got for $left)" test "$got" -ge $((left - 1000000)) -a "$got" -le $((left + 1000000))
check "and it is blocked again" wait_for 10 blocked

# several connections at once draw on one quota: together they are cut at it
lab_api POST /api/v1/clients/192.168.2.10/quota/reset -H "$ADMIN" >/dev/null
check "reset: active" wait_for 5 relays 192.168.2.10
sleep 2.5 # the check's bytes counted
used=$(q .quota.used)
pids=""
for i in 1 2 3 4; do
	ip netns exec "$(lab_ns lan)" curl -s -o /dev/null -m 60 -w '%{size_download}\n' --interface 192.168.2.10 \
		"http://$LAB_WEB/files/50m.bin" >"$LAB_DIR/par.$i" &
	pids="$pids $!"
done
wait $pids
sum=$(awk '{s += $1} END {print s}' "$LAB_DIR"/par.*)
left=$((20000000 - used))
echo "# four downloads at once (${used} used before): $(cat "$LAB_DIR"/par.* | tr '\n' ' ')= ${sum} bytes for ${left} left"
check "four downloads at once are cut at the quota together ($sum for $left)" \
	test "$sum" -ge $((left - 1000000)) -a "$sum" -le $((left + 1000000))
check "blocked" wait_for 10 blocked

# a client that reads slowly from 3 MB short of its quota, and not at all once it is cut: the cut
# finds bytes its socket still holds and waits for them to go; the block lands meanwhile, and
# 300 ms on the agent deletes its conntrack state (the bytes could go until then). The reset must
# go at the block, while REDIRECT still maps the connection: sent later (when the wait finds
# nothing moved for 5 s) it leaves unmapped and the client waits out its own timeout. With
# block_action=drop nothing else ever resets it (with reject, a packet it sends after conntrack
# forgot it is refused with a reset by the forward chain; a client that has nothing to send,
# like curl with every byte read when the wait's tick came after the forgetting, waited all the
# same: how this file once failed in CI).
$ctl settings set block_action drop >/dev/null
lab_api POST /api/v1/clients/192.168.2.10/quota/reset -H "$ADMIN" >/dev/null
check "reset: active" wait_for 5 relays 192.168.2.10
sleep 2.5 # the check's bytes counted
left=$((20000000 - $(q .quota.used)))
cuts_now() { grep -c 'client=192.168.2.10:[0-9]* .*close=quota_exceeded' "$LAB_DIR/pgw-forwarder-2.log"; }
cuts=$(cuts_now)
rm -f "$LAB_DIR/stalled.stop" "$LAB_DIR/stalled.go"
lab_exec lan python3 - "$LAB_WEB" $((left - 3000000)) "$LAB_DIR/stalled" >"$LAB_DIR/stalled.out" 2>&1 <<-'PY' &
	import os, socket, sys, time
	web, slow_from, stop, go = sys.argv[1], int(sys.argv[2]), sys.argv[3] + ".stop", sys.argv[3] + ".go"
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)  # a small window: the gateway's socket holds the rest
	s.settimeout(20)
	s.bind(("192.168.2.10", 0))
	s.connect((web, 80))
	s.sendall(b"GET /files/50m.bin HTTP/1.1\r\nHost: web\r\n\r\n")
	got, end = 0, time.time() + 60
	try:
	    while True:
	        fast = got < slow_from or os.path.exists(go) or time.time() > end
	        if not fast and os.path.exists(stop):  # cut: no more reading until told
	            time.sleep(0.05)
	            continue
	        b = s.recv(1 << 20 if fast else 32768)
	        if not b:
	            sys.exit(f"fin after {got} bytes")
	        got += len(b)
	        if not fast:
	            time.sleep(0.1)  # 320 KB/s: the cut comes with bytes the gateway's socket holds
	except ConnectionResetError:
	    print("reset")
	except socket.timeout:
	    print("timeout")
	PY
STALLED=$!
cut_again() { [ "$(cuts_now)" -gt "$cuts" ]; }
check "a client that reads slowly from 3 MB short is cut at its quota" wait_for 30 cut_again
touch "$LAB_DIR/stalled.stop"
check "... blocked while the bytes wait for it (it reads no more)" wait_for 10 blocked
check "... in the kernel" wait_for 5 in_set
sleep 1 # past the agent's 300 ms: conntrack has forgotten the client; it reads on at full speed
touch "$LAB_DIR/stalled.go"
wait "$STALLED"
check_eq "... and gets the reset (not a timeout: the reset went while conntrack mapped it)" \
	"$(cat "$LAB_DIR/stalled.out")" reset
$ctl settings set block_action reject >/dev/null

# a new period starts the count over, in the forwarder too (here the day's start moves with the
# time zone: the same path as midnight)
lab_api POST /api/v1/clients/192.168.2.10/quota/reset -H "$ADMIN" >/dev/null
check "reset: active" wait_for 5 relays 192.168.2.10
check_eq "8,000,000 bytes" "$(dl 8m.bin)" 8000000
check "... counted" wait_for 6 settled
check_eq "... not blocked" "$(q '[.state, .quota.exceeded] | map(tostring) | join(" ")')" '"active false"'
check "... and relays" relays 192.168.2.10
n=$(lab_fwd_reloads pgw-forwarder-2 event)
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"quota_timezone":"Pacific/Kiritimati"}' >/dev/null
ps_kiri=$(TZ=Pacific/Kiritimati date -d 'today 00:00' +%s)
new_period() { [ "$(q '[.quota.period_start, .quota.used] | map(tostring) | join(" ")')" = "\"$ps_kiri 0\"" ]; }
check "the day now begins at midnight in Kiribati: a new period, nothing used" wait_for 5 new_period
rolled() { [ "$(lab_db "SELECT period_start || ' ' || used FROM client_quota WHERE client_ip = '192.168.2.10'")" = "$ps_kiri 0" ]; }
check "... in the DB the forwarder reads, at once (the setting's change)" wait_for 3 rolled
# the forwarder reloads twice on notices: the setting's, then the rollover's (pgw-api's feed
# starts the period over, then tells it); the second one reads the new period
check "... and the forwarder has the new period (two reloads on notices)" lab_fwd_reloaded $((n + 1)) pgw-forwarder-2 event
got=$(dl 50m.bin)
echo "# in the new period: ${got} bytes arrived"
check "the forwarder counts the new period from 0: cut at 20 MB +-1 MB again ($got)" test "$got" -ge 19000000 -a "$got" -le 21000000
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"quota_timezone":"UTC"}' >/dev/null

# raising the quota unblocks at once; 0 removes it
check_match "PATCH quota_bytes 100 MB" "$(lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"quota_bytes":100000000}')" '^200 '
check "a larger quota unblocks the client" wait_for 5 relays 192.168.2.10
check_match "PATCH quota_bytes 0: no quota" "$(lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"quota_bytes":0}')" '^200 '
check_eq "... /clients shows none" "$(q .quota)" null
check_match "grant without a quota: 409" \
	"$(lab_api POST /api/v1/clients/192.168.2.10/quota/grant -H "$ADMIN" -H "$J" -d '{"bytes":1}')" '^409 '
check_match "another address: 404" \
	"$(lab_api POST /api/v1/clients/192.168.2.99/quota/reset -H "$ADMIN")" '^404 '

# the period's start in the time zone the setting names
check_match "quota_timezone must be a known zone" \
	"$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"quota_timezone":"Mars/Olympus"}')" '^400 '
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"quota_timezone":"Asia/Tokyo"}' >/dev/null
lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"quota_bytes":1000000000,"quota_period":"week"}' >/dev/null
check_eq "a week's quota in Tokyo begins on Monday 00:00 there" "$(q .quota.period_start)" \
	"$(TZ=Asia/Tokyo date -d "$(TZ=Asia/Tokyo date -d 'now - '"$(( ($(TZ=Asia/Tokyo date +%u) - 1) ))"' days' +%F) 00:00" +%s)"
kill "$SSE" 2>/dev/null
finish
