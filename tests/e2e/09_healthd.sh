#!/usr/bin/env bash
# Scenario: pgw-healthd against real proxies: up with the right exit IP and a latency; wrong
# password, closed port and a proxy that never answers each down with their typed reason, the
# last within the timeout; a killed proxy goes down within interval + timeout, and at once
# when the forwarder reports a failure, and its client is then blocked by the agent; back up
# when it returns; on-demand checks (shared by concurrent requests); bounded history.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
ip -n "$(lab_ns wan)" addr add 198.51.100.23/24 dev wan0
lab_bg wan bad-silent socat TCP-LISTEN:1080,bind=198.51.100.23,fork,reuseaddr SYSTEM:'sleep 60'
lab_wait_port wan 198.51.100.23 1080 || exit 1
$ctl settings set health_timeout 2 >/dev/null
$ctl settings set health_interval 3 >/dev/null
$ctl settings set health_down_interval 1 >/dev/null
$ctl settings set health_history_max 10 >/dev/null
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES
    $LAB_PEER_PROXIES,
    (4, 'wrong-pass', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', 'wrong'),
    (5, 'closed-port', 'socks5', '$LAB_SOCKS_AUTH', 1099, '', ''),
    (6, 'black-hole', 'socks5', '198.51.100.23', 1080, '', ''),
    (7, 'http-wrong', 'http', '$LAB_HTTP_PROXY', 8888, '$LAB_PROXY_USER', 'wrong');
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.11', 2);"
t0=$(date +%s%N)
for d in healthd agent forwarder; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
st() { db "SELECT status FROM proxy_health WHERE proxy_id = $1"; }
col() { db "SELECT $2 FROM proxy_health WHERE proxy_id = $1"; }
check "first round of probes done" wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT count(*) FROM proxy_health WHERE status != 'unknown'\") = 7 ]"
for p in "1 $LAB_SOCKS_AUTH microsocks-with-auth" "2 $LAB_SOCKS_NOAUTH microsocks-without-auth" "3 $LAB_HTTP_PROXY tinyproxy-basic-auth"; do
	set -- $p
	check_eq "$3: up" "$(st $1)" "up"
	check_eq "$3: exit ip is the proxy's own" "$(col $1 exit_ip)" "$2"
	check "$3: latency recorded ($(col $1 latency_ms) ms: connect $(col $1 connect_ms), handshake $(col $1 handshake_ms), first byte $(col $1 first_byte_ms))" \
		test -n "$(col $1 latency_ms)"
done
check_eq "wrong password: down" "$(st 4)" "down"
check_eq "wrong password: auth_failed" "$(col 4 last_error)" "auth_failed"
check_eq "closed port: connection_refused" "$(col 5 last_error)" "connection_refused"
check_match "black hole: timeout" "$(col 6 last_error)" "^timeout"
ms=$(( ($(date -d "@$(col 6 checked_at)" +%s) - t0 / 1000000000) ))
check "black hole: down within the timeout (checked ${ms}s after start, timeout 2 s)" test "$ms" -le 3
check_eq "HTTP proxy, wrong password: auth_failed" "$(col 7 last_error)" "auth_failed"
check "the agent has the healthy proxy's client active" wait_for 3 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -qw 192.168.2.11"

# kill a proxy: down within interval + timeout (3 + 2 s)
noauth=$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")
lab_stop_pid "$noauth"
t0=$(date +%s%N)
check "killed proxy: down within interval + timeout" wait_for 7 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status FROM proxy_health WHERE proxy_id = 2')\" = down ]"
echo "# killed proxy seen down after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check "... and its client is blocked in the kernel" wait_for 1 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw blocked4 | grep -qw 192.168.2.11"
check_match "the last error says why" "$(col 2 last_error)" "connection_refused"

# bring it back: up again (2 good probes, 1 s apart)
lab_bg wan microsocks-noauth-2 microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH
check "restarted proxy: up again" wait_for 6 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status FROM proxy_health WHERE proxy_id = 2')\" = up ]"
check "... and its client active again" wait_for 2 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -qw 192.168.2.11"
check_eq "... and it relays again" "$(lab_exec lan curl -sS -m 5 --interface 192.168.2.11 http://$LAB_WEB/ip)" "$LAB_SOCKS_NOAUTH"

# passive health: with a long interval, the forwarder's failure report triggers the check
$ctl settings set health_interval 600 >/dev/null
sleep 1.5
lab_stop_pid "$LAB_LAST_PID"
t0=$(date +%s%N)
lab_exec lan curl -s -m 3 --interface 192.168.2.11 http://$LAB_WEB/ip >/dev/null 2>&1
check "the forwarder's report makes healthd check at once: down in under 2 s" \
	wait_for 2 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status FROM proxy_health WHERE proxy_id = 2')\" = down ]"
echo "# down $(( ($(date +%s%N) - t0) / 1000000 )) ms after the client's failed attempt"
check "healthd logged the report" grep -q 'the forwarder saw it fail' "$LAB_DIR/pgw-healthd.log"

# a shorter interval counts from each proxy's last probe, not after the old one: proxy 1, just
# checked on the 600 s schedule, is probed again within seconds of health_interval 1
$ctl check 1 >/dev/null
h=$(db "SELECT coalesce(max(id), 0) FROM health_history")
$ctl settings set health_interval 1 >/dev/null
check "health_interval 600 -> 1: the up proxy probed twice more within 5 s (not 600 s on)" \
	wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT count(*) FROM health_history WHERE proxy_id = 1 AND id > $h') -ge 2 ]"
check "... and healthd said so" grep -q 'probing every 1 s now (down: every 1 s)' "$LAB_DIR/pgw-healthd.log"
$ctl settings set health_interval 600 >/dev/null

# on-demand checks
out=$($ctl check 1)
check_match "pgwctl check: up with exit ip" "$out" "proxy 1: up, [0-9]+ ms, exit ip $LAB_SOCKS_AUTH"
out=$($ctl check 4)
check_match "pgwctl check: down with reason (exit 1)" "$out" "proxy 4: down: auth_failed"
out=$($ctl check 99)
check_match "pgwctl check: unknown proxy" "$out" "unknown or disabled proxy"
# the probes they cause: proxy 6's history rows written after now (counted by row id: the
# history is trimmed to 10 rows a proxy, so its count alone could stay the same)
h0=$(db "SELECT coalesce(max(id), 0) FROM health_history")
$ctl check 6 >/dev/null & a=$!
$ctl check 6 >/dev/null & b=$!
wait $a; ra=$?
wait $b; rb=$?
check "two concurrent checks of a slow proxy both get the answer (down)" test $ra -eq 1 -a $rb -eq 1
rows6() { h1=$(db "SELECT count(*) FROM health_history WHERE proxy_id = 6 AND id > $h0") && [ "$h1" -ge 1 ]; }
wait_for 3 rows6 # the answer may come before its row is written (a locked DB: written on a later tick)
check "... from one shared probe (history +$h1: the shared one, perhaps one scheduled)" test "$h1" -ge 1 -a "$h1" -le 2

# an up proxy whose exit IP changes: its own event
auth=$(awk '$2 == "microsocks-auth" {print $1}' "$LAB_DIR/pids")
lab_stop_pid "$auth"
lab_bg wan microsocks-auth-moved microsocks -i $LAB_SOCKS_AUTH -p 1080 -u $LAB_PROXY_USER -P $LAB_PROXY_PASS -b $LAB_DANTE
lab_wait_port wan $LAB_SOCKS_AUTH 1080
$ctl check 1 >/dev/null
check_eq "a changed exit IP is recorded" "$(col 1 exit_ip)" "$LAB_DANTE"
check "... and logged as an event of its own" grep -q "proxy 1 (socks-auth): exit ip changed $LAB_SOCKS_AUTH -> $LAB_DANTE" "$LAB_DIR/pgw-healthd.log"

export PGW_JWT_SECRET=hd-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080 \
	PGW_METRICS_TOKEN=hd-metrics-token-0123456789
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
lab_wait_port gw 127.0.0.1 8080
m=$(lab_exec gw curl -s -H "Authorization: Bearer $PGW_METRICS_TOKEN" http://127.0.0.1:8080/metrics)
check_match "... and a metric: the exit IP as an info series" "$m" "pgw_proxy_exit_ip_info\{proxy=\"socks-auth\",id=\"1\",exit_ip=\"$LAB_DANTE\"\} 1"
check_match "... and the count of changes" "$m" 'pgw_proxy_exit_ip_changes_total\{proxy="socks-auth",id="1"\} [1-9]'
# a name of 50 four-byte characters (200 bytes, the API takes 64 characters) is a whole label:
# once cut mid-character, leaving invalid UTF-8 that fails the whole scrape
emoji=$(printf '\xf0\x9f\x98\x80%.0s' $(seq 1 50))
db "UPDATE proxies SET name = '$emoji' WHERE id = 5"
m=$(lab_exec gw curl -s -H "Authorization: Bearer $PGW_METRICS_TOKEN" http://127.0.0.1:8080/metrics)
check "/metrics with a 200-byte proxy name: valid UTF-8, the name whole" \
	bash -c 'iconv -f UTF-8 -t UTF-8 >/dev/null <<<"$1" && grep -qF "pgw_proxy_up{proxy=\"$2\",id=\"5\"}" <<<"$1"' _ "$m" "$emoji"
db "UPDATE proxies SET name = 'closed-port' WHERE id = 5"

# health that does not lie: a health URL whose server answers and then keeps the connection
# open (as some proxies and echo services do) is read to the end of its response (its
# Content-Length, or a chunked body's last chunk), not until the timeout (2 s here)
for port in 8081 8082; do
	if [ $port = 8081 ]; then
		body='Content-Length: %d\r\n\r\n%s'
	else
		body='Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n'
	fi
	# each answers an address of its own (192.0.2.81, .82), told apart from nginx's /ip (which
	# says the proxy's) and from each other
	printf '#!/bin/sh\nprintf "HTTP/1.1 200 OK\\r\\n%s" 10 192.0.2.%s\nsleep 20\n' "$body" $((port - 8000)) >"$LAB_DIR/held-$port.sh"
	lab_bg wan "held-$port" socat TCP-LISTEN:$port,bind=$LAB_WEB,fork,reuseaddr "EXEC:sh $LAB_DIR/held-$port.sh"
	lab_wait_port wan $LAB_WEB $port
	$ctl settings set health_url "http://$LAB_WEB:$port/" >/dev/null
	$ctl notify settings >/dev/null
	held_used() { $ctl check 1 | grep -q "exit ip 192.0.2.$((port - 8000))\$"; }
	check "pgw-healthd probes the held-open server (port $port) once told" wait_for 10 held_used
	t0=$(lab_ms)
	out=$($ctl check 1)
	t1=$(lab_ms)
	kind=$([ $port = 8081 ] && echo "Content-Length" || echo "chunked")
	check_match "a $kind answer on a connection held open: up, the exit IP read, in $((t1 - t0)) ms (no timeout)" \
		"$out" "^proxy 1: up, [0-9]+ ms, exit ip 192.0.2.$((port - 8000))\$"
	check "... well within the 2 s timeout" test $((t1 - t0)) -lt 1500
done
# the longest health URL the setting takes (a 200-character name, a 250-character path) is
# fetched: its request once did not fit the probe's buffer, so no probe ever started (the proxy
# stayed unknown, and a check waited for an answer that never came). The lab's proxies cannot
# resolve the name: a typed "down" from the proxy is the answer.
label=$(printf 'a%.0s' $(seq 1 49))
long="http://$label.$label.$label.$label.lab-test/$(printf 'p%.0s' $(seq 1 250))"
$ctl settings set health_url "$long" >/dev/null
$ctl notify settings >/dev/null
t0=$(lab_ms)
out=$($ctl check 1)
rc=$?
echo "# a ${#long}-character health URL: '$out' (exit $rc) in $(($(lab_ms) - t0)) ms"
check_match "a ${#long}-character health URL is probed: an answer from the proxy (down, typed), not silence" \
	"$rc $out" "^1 proxy 1: down: (proxy_refused|upstream_closed|host_unreachable)"
$ctl settings set health_url "$PGW_HEALTH_URL" >/dev/null
$ctl notify settings >/dev/null

# bounded history (health_history_max = 10); down proxies are probed every second
sleep 3
check_eq "history stays bounded (at most 10 rows per proxy)" \
	"$(db 'SELECT max(c) FROM (SELECT count(*) c FROM health_history GROUP BY proxy_id)')" "10"
# a proxy list that cannot be read (a column gone, as after a bad restore) is read again on
# every tick (250 ms): said once, and when it works again, not four times a second
hlog() { tail -n +$((l0 + 1)) "$LAB_DIR/pgw-healthd.log"; } # the lines since the column went
l0=$(wc -l <"$LAB_DIR/pgw-healthd.log")
check "the proxies' column expected_exit renamed away" lab_db "ALTER TABLE proxies RENAME COLUMN expected_exit TO expected_exit_gone"
$ctl notify proxies >/dev/null
sleep 1.5
check "... and back" lab_db "ALTER TABLE proxies RENAME COLUMN expected_exit_gone TO expected_exit"
check "an unreadable proxy list is read again until it works" \
	wait_for 3 bash -c "tail -n +$((l0 + 1)) '$LAB_DIR/pgw-healthd.log' | grep -q 'load proxies: works again (after [0-9]* failed tries)'"
tries=$(hlog | grep -o 'works again (after [0-9]*' | grep -o '[0-9]*$' | head -1)
check_eq "... its failure logged once, not at each of the $tries tries" "$(hlog | grep -c 'load proxies: .*until it works')" 1
check "... which were several (the tick retried)" test "${tries:-0}" -ge 3
kill -TERM $pid_healthd
wait $pid_healthd
check_eq "SIGTERM: exit 0" "$?" "0"
finish
