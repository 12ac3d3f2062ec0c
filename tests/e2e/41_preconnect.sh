#!/usr/bin/env bash
# Scenario (issue 24): connection setup in one round trip. pgw-forwarder keeps sessions to a
# proxy connected, greeted and authenticated ahead of the next client connection; a connection
# takes one and sends its request there, with the client's first bytes in the same write where
# a probe proved the proxy takes that (dante does; microsocks drops bytes that come ahead of its
# reply, so it must not get them). A session serves one connection and is never back in the
# pool; one the proxy closes while it waits teaches the pool the proxy's timeout; a protocol
# where the server speaks first still works; proxies.preconnect=false opts a proxy out (API).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
LAB_DANTE_OPTS='timeout.negotiate: 4' lab_start_dante >/dev/null || exit 1
ctl=$PGW_BIN/pgwctl
db() { lab_db "$@"; }
check "four proxies and their clients set up (lab_four_proxies)" lab_four_proxies
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
# a server that speaks first (as SMTP, FTP, POP3 do): its banner, then it echoes a line (2525);
# one that reads to the client's EOF, then says how much came (2526); one that says bye and
# closes at once (2527)
lab_bg wan banner python3 -c '
import socket, threading
def first(c):
    c.sendall(b"220 pgw banner\r\n"); f = c.makefile("rb"); c.sendall(b"echo " + f.readline())
def to_eof(c):
    n = 0
    while True:
        d = c.recv(4096)
        if not d: break
        n += len(d)
    c.sendall(b"got %d\n" % n)
def bye(c):
    c.sendall(b"bye\r\n")
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("'$LAB_WEB'", port)); s.listen(16)
    while True:
        c, _ = s.accept(); threading.Thread(target=lambda c=c: (fn(c), c.close()), daemon=True).start()
for port, fn in ((2526, to_eof), (2527, bye)):
    threading.Thread(target=serve, args=(port, fn), daemon=True).start()
serve(2525, first)'
for p in 2525 2526 2527; do lab_wait_port wan "$LAB_WEB" $p; done
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
J='Content-Type: application/json'
hlog=$LAB_DIR/pgw-healthd.log
flog=$LAB_DIR/pgw-forwarder.log
st() { $ctl stats | jq -r "$1"; }
fetch() { lab_exec lan curl -s -m 5 --interface "$1" "http://$LAB_WEB/ip"; }
early() { db "SELECT early_data FROM proxy_health WHERE proxy_id = $1"; }
# the forwarder's own connections to dante (healthd's probes run in the same namespace)
fwd_to_dante() { lab_ss_held "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids" | tail -1)" gw state established "( dst $LAB_DANTE and dport = 1080 )" | grep -c .; }
# the access-log line of the last connection from client $1 (to port $2)
last_conn() { grep -E "conn client=$1:[0-9]+ dst=[^ ]*:$2 " "$flog" | tail -1; }
# ... how many there are, and the next one once written (the line comes when the connection
# ends, which may be a moment after the client has its answer): `n=$(conns C P)`, a
# connection, then `next_conn C P $n`
conns() { grep -cE "conn client=$1:[0-9]+ dst=[^ ]*:$2 " "$flog"; }
next_conn() {
	wait_for 3 bash -c "[ \$(grep -cE 'conn client=$1:[0-9]+ dst=[^ ]*:$2 ' '$flog') -gt $3 ]" || { echo "no new line"; return 1; }
	last_conn "$1" "$2"
}
export -f fwd_to_dante lab_ns lab_ss_held
export LAB_ID LAB_DANTE LAB_DIR

check "all four proxies up" wait_for 8 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT count(*) FROM proxy_health WHERE status = 'up'\") = 4 ]"
check "dante: the probe with the GET behind the CONNECT succeeded, early_data = 1" \
	wait_for 8 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT early_data FROM proxy_health WHERE proxy_id = 4') = 1 ]"
check "microsocks with auth: tested, does not take them (its log line)" \
	wait_for 8 grep -q "proxy 1 (socks-auth): does not take the client's first bytes" "$hlog"
check "microsocks without auth: tested, does not take them" \
	wait_for 8 grep -q "proxy 2 (socks-open): does not take the client's first bytes" "$hlog"
check "tinyproxy (HTTP CONNECT): tested (its log line)" \
	wait_for 8 grep -qE "proxy 3 \(http-auth\): (takes|does not take) the client's first bytes" "$hlog"
check_eq "microsocks: early_data = 0, both" "$(early 1)$(early 2)" "00"
check_match "GET /api/v1/health shows early_data" \
	"$(lab_api GET /api/v1/health -H "$ADMIN" | cut -d' ' -f2- | jq -c '[.items[] | select(.proxy_id == 4) | .early_data]')" '^\[true\]$'
check_match "a proxy is preconnect by default (GET /api/v1/proxies/4)" \
	"$(lab_api GET /api/v1/proxies/4 -H "$ADMIN")" '^200 .*"preconnect": *true'

for c in "192.168.2.10 $LAB_SOCKS_AUTH" "192.168.2.11 $LAB_SOCKS_NOAUTH" "192.168.2.12 $LAB_HTTP_PROXY" "192.168.2.13 $LAB_DANTE"; do
	set -- $c
	check_eq "client $1: exit address $2" "$(fetch $1)" "$2"
done
# warm both workers' pools up (each worker keeps its own; a connection lands on either)
for ((i = 0; i < 20; i++)); do fetch 192.168.2.13 >/dev/null; done
check "sessions to dante are kept ready while no client connection is open (the forwarder's, ss)" \
	wait_for 3 bash -c '[ "$(fwd_to_dante)" -ge 1 ]'

# ten connections: each takes a ready session and sends its GET with the CONNECT
counts='[.upstream_sessions.used, .upstream_sessions.missed, .early_data] | @tsv'
read -r u0 m0 e0 < <(st "$counts")
ok=0 pooled=0 early_sent=0
for ((i = 0; i < 10; i++)); do
	n=$(conns 192.168.2.13 80)
	[ "$(fetch 192.168.2.13)" = "$LAB_DANTE" ] && ok=$((ok + 1))
	line=$(next_conn 192.168.2.13 80 "$n")
	[[ $line == *" preconnected"* ]] && pooled=$((pooled + 1))
	[[ $line == *" early_data"* ]] && early_sent=$((early_sent + 1))
done
read -r u1 m1 e1 < <(st "$counts")
check_eq "10 fetches through dante: all answered" "$ok" 10
echo "# used $((u1 - u0)), missed $((m1 - m0)), early $((e1 - e0)); access log: preconnected $pooled, early_data $early_sent"
check "at least 8 of the 10 took a ready session (access log: preconnected)" [ "$pooled" -ge 8 ]
check_eq "... as the counters say: used + missed = 10, used = those" "$((u1 - u0 + m1 - m0)) $((u1 - u0))" "10 $pooled"
check "at least 8 of the 10 sent the client's first bytes with the CONNECT (access log: early_data)" [ "$early_sent" -ge 8 ]
check_eq "... as the counter says" "$((e1 - e0))" "$early_sent"
check "the access log names the connection pooled" grep -qE 'client=192.168.2.13:[0-9]+ .*close=done.* preconnected' "$flog"

# microsocks: sessions kept ready too, but the request goes alone (it would drop the bytes)
ok=0 pooled=0 early_sent=0
for ((i = 0; i < 10; i++)); do
	n=$(conns 192.168.2.10 80)
	[ "$(fetch 192.168.2.10)" = "$LAB_SOCKS_AUTH" ] && ok=$((ok + 1))
	line=$(next_conn 192.168.2.10 80 "$n")
	[[ $line == *" preconnected"* ]] && pooled=$((pooled + 1))
	[[ $line == *" early_data"* ]] && early_sent=$((early_sent + 1))
done
check_eq "10 fetches through microsocks (auth): all answered" "$ok" 10
check "... most from ready sessions, greeted and authenticated ahead (access log)" [ "$pooled" -ge 5 ]
check_eq "... never with the client's bytes ahead of the reply" "$early_sent" 0
ok=0 pooled=0
for ((i = 0; i < 5; i++)); do
	n=$(conns 192.168.2.12 80)
	[ "$(fetch 192.168.2.12)" = "$LAB_HTTP_PROXY" ] && ok=$((ok + 1))
	[[ $(next_conn 192.168.2.12 80 "$n") == *" preconnected"* ]] && pooled=$((pooled + 1))
done
check_eq "5 fetches through tinyproxy (HTTP CONNECT): all answered" "$ok" 5
check "... most from sessions connected ahead (access log)" [ "$pooled" -ge 3 ]

# a server that speaks first: the client sends nothing until the banner; the request goes alone
# after a short wait, and the banner comes back
banner() { lab_exec lan python3 -c '
import socket, sys
s = socket.create_connection(("'$LAB_WEB'", 2525), timeout=4, source_address=("192.168.2.13", 0))
f = s.makefile("rb"); b = f.readline(); s.sendall(b"hello\r\n"); sys.stdout.write((b + f.readline()).decode())'; }
n=$(conns 192.168.2.13 2525)
got=$(banner 2>&1)
check_eq "a server-first protocol through dante (a ready session, early data on): the banner, then the echo" \
	"$(tr -d '\r' <<<"$got")" "220 pgw banner
echo hello"
line=$(next_conn 192.168.2.13 2525 "$n")
check_match "... from a ready session whose request went alone after the wait (access log: preconnected, no early_data)" \
	"$line" 'close=done pipelined preconnected"'
# 20 connections each (dante: ready sessions, early data): a client that sends its request and
# half-closes at once (bytes and FIN under one edge: the early read takes the bytes, leaving the
# EOF to read), and a server that speaks and closes at once (its bytes and FIN may come in with
# dante's reply). Each must get its FIN through, not wait for an idle timeout.
twenty() { lab_exec lan python3 -c '
import socket, sys
ok = 0
for i in range(20):
    s = socket.create_connection(("'$LAB_WEB'", int(sys.argv[1])), timeout=3, source_address=("192.168.2.13", 0))
    if sys.argv[1] == "2526":
        s.sendall(b"x" * 100); s.shutdown(socket.SHUT_WR)
    b, eof = b"", False
    try:
        while True:
            d = s.recv(4096)
            if not d:
                eof = True
                break
            b += d
    except socket.timeout:
        pass
    ok += eof and b == sys.argv[2].encode().replace(b"~", b"\r\n")
    s.close()
print(ok)' "$@"; }
check_eq "20 clients that send and half-close at once: each FIN passed on, each answer back to EOF" \
	"$(twenty 2526 'got 100
')" 20
check_eq "20 connections to a server that speaks and closes at once: its bytes and its FIN, each time" \
	"$(twenty 2527 'bye~')" 20
head -c 3000000 /dev/urandom >"$LAB_DIR/www/files/rand.bin"
n=$(conns 192.168.2.13 80)
sum=$(lab_exec lan curl -s -m 10 --interface 192.168.2.13 "http://$LAB_WEB/files/rand.bin" | sha256sum)
check_eq "3 MB through dante: byte-identical" "$sum" "$(sha256sum <"$LAB_DIR/www/files/rand.bin")"
check_match "... from a ready session, the GET with the CONNECT (access log)" "$(next_conn 192.168.2.13 80 "$n")" \
	'down=3[0-9]{6} .* preconnected early_data"'

# dante closes sessions that have not sent their request within 4 s: the pool learns that
check "dante closed an idle session: the pool retires them sooner from now on (log)" \
	wait_for 12 grep -qE 'proxy 4: closed an idle session after [0-9]+ ms: sessions kept ready retire after [0-9]+ ms' "$flog"
sleep 5 # the sessions opened before the lesson are gone by now (dante's 4 s)
fetch 192.168.2.13 >/dev/null
read -r r0 c0 < <(st '[.upstream_sessions.retired, .upstream_sessions.closed_by_proxy] | @tsv')
sleep 6
read -r r1 c1 < <(st '[.upstream_sessions.retired, .upstream_sessions.closed_by_proxy] | @tsv')
echo "# over 6 s: retired $((r1 - r0)), closed by dante $((c1 - c0))"
check "... then retires them before dante's timeout (over 6 s: some retired, none closed by dante)" \
	bash -c "[ $((r1 - r0)) -gt 0 ] && [ $c1 -eq $c0 ]"
check_eq "... and connections are still served" "$(fetch 192.168.2.13)" "$LAB_DANTE"

# the per-proxy opt-out
check_match "preconnect must be a boolean (400)" \
	"$(lab_api PATCH /api/v1/proxies/4 -H "$ADMIN" -H "$J" -d '{"preconnect":"no"}')" '^400 .*preconnect'
check_eq "... and nothing changed" "$(db 'SELECT preconnect FROM proxies WHERE id = 4')" 1
check_match "PATCH preconnect=false" \
	"$(lab_api PATCH /api/v1/proxies/4 -H "$ADMIN" -H "$J" -d '{"preconnect":false}')" '^200 .*"preconnect": *false'
check "the forwarder keeps no session to dante any more (ss)" wait_for 3 bash -c '[ "$(fwd_to_dante)" = 0 ]'
read -r u0 m0 < <(st '[.upstream_sessions.used, .upstream_sessions.missed] | @tsv')
n=$(conns 192.168.2.13 80)
check_eq "dante's client still served" "$(fetch 192.168.2.13)" "$LAB_DANTE"
line=$(next_conn 192.168.2.13 80 "$n")
read -r u1 m1 < <(st '[.upstream_sessions.used, .upstream_sessions.missed] | @tsv')
check_match "... by a connection of its own: not preconnected (access log), nothing counted" \
	"$line $((u1 - u0)) $((m1 - m0))" 'close=done pipelined( early_data)?"\} 0 0$'
check "... and none kept after it" bash -c 'sleep 1; [ "$(fwd_to_dante)" = 0 ]'
check_match "/metrics: sessions ready and what became of them" \
	"$(lab_exec gw curl -s -H "$ADMIN" http://127.0.0.1:8080/metrics)" \
	'pgw_forwarder_upstream_sessions_ready [0-9]+.*pgw_forwarder_upstream_sessions_total\{event="used"\} [1-9].*pgw_forwarder_early_data_total [1-9]'
finish
