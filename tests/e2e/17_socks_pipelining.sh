#!/usr/bin/env bash
# Scenario: pipelined SOCKS5 handshakes (greeting, auth and CONNECT in one write) only where
# a probe proved the proxy takes them. dante-server does; microsocks drops bytes that arrive
# ahead of their turn, so it must stay lock-step, and its clients must keep working. A
# failure the forwarder sees, a change of the proxy, or socks_pipelining=false each put the
# proxy back to lock-step (at once, in the DB the forwarder reads).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_dante >/dev/null || exit 1
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
check "four proxies and their clients set up (lab_four_proxies)" lab_four_proxies
for d in healthd agent forwarder; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
done
pl() { db "SELECT pipelining FROM proxy_health WHERE proxy_id = $1"; }
fetch() { lab_exec lan curl -s -m 5 --interface "$1" "http://$LAB_WEB/ip"; }
flog=$LAB_DIR/pgw-forwarder.log
hlog=$LAB_DIR/pgw-healthd.log

check "all four proxies up" wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT count(*) FROM proxy_health WHERE status = 'up'\") = 4 ]"
check "dante: a pipelined probe succeeded, pipelining = 1" wait_for 4 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT pipelining FROM proxy_health WHERE proxy_id = 4') = 1 ]"
check "microsocks with auth: tested and refused (its log line)" wait_for 4 grep -q 'proxy 1 (socks-auth): does not take pipelined' "$hlog"
check "microsocks without auth: tested and refused (its log line)" wait_for 4 grep -q 'proxy 2 (socks-open): does not take pipelined' "$hlog"
check_eq "microsocks with auth: pipelining = 0" "$(pl 1)" 0
check_eq "microsocks without auth: pipelining = 0" "$(pl 2)" 0
check_eq "HTTP proxy: never tested, pipelining = 0" "$(pl 3)" 0
check_eq "the failed pipelined probes did not mark microsocks down" \
	"$(db "SELECT group_concat(status) FROM proxy_health WHERE proxy_id IN (1, 2)")" "up,up"

for c in "192.168.2.10 $LAB_SOCKS_AUTH" "192.168.2.11 $LAB_SOCKS_NOAUTH" "192.168.2.12 $LAB_HTTP_PROXY" "192.168.2.13 $LAB_DANTE"; do
	set -- $c
	check_eq "client $1: exit address $2" "$(fetch $1)" "$2"
done
export -f fetch lab_exec lab_ns
export LAB_ID LAB_WEB
check "dante's client goes through a pipelined handshake (access log)" \
	wait_for 3 bash -c "fetch 192.168.2.13 >/dev/null; grep -q 'client=192.168.2.13:[0-9]* .*close=done pipelined' $flog"
check_fails "microsocks' clients never did" grep -qE 'client=192.168.2.1[01]:[0-9]* .* pipelined' "$flog"
# 50 connections through dante, pipelined, all byte-exact
ok=0
for ((i = 0; i < 50; i++)); do [ "$(fetch 192.168.2.13)" = "$LAB_DANTE" ] && ok=$((ok + 1)); done
check_eq "50 sequential fetches through dante, pipelined: all answered" "$ok" 50
head -c 3000000 /dev/urandom >"$LAB_DIR/www/files/rand.bin"
sum=$(lab_exec lan curl -s -m 10 --interface 192.168.2.13 "http://$LAB_WEB/files/rand.bin" | sha256sum)
check_eq "3 MB through dante, pipelined: byte-identical" "$sum" "$(sha256sum <"$LAB_DIR/www/files/rand.bin")"

# a failure the forwarder sees: back to lock-step at once, tested again when up
# healthd's own probe must not see the kill first: its next probe of dante is put 30 s out (a
# result after the change is due an interval later); the forwarder's report makes it probe now
$ctl settings set health_interval 30 >/dev/null
last=$(db "SELECT max(id) FROM health_history WHERE proxy_id = 4")
wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT max(id) FROM health_history WHERE proxy_id = 4') -gt $last ]"
dpid=$(awk '$2 == "danted" {print $1}' "$LAB_DIR/pids")
# SIGKILL and fetch at once: the forwarder must be the first to see it (else the client is
# blocked before the forwarder could see anything)
kill -KILL "$dpid"
for p in $(ip netns pids "$(lab_ns wan)"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = danted ] && kill -KILL "$p"; done
fetch 192.168.2.13 >/dev/null
check "dante killed: the forwarder's report puts it back to lock-step" wait_for 2 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT pipelining FROM proxy_health WHERE proxy_id = 4') = 0 ]"
check "healthd says why" grep -q 'proxy 4 (dante): the forwarder saw it fail: lock-step' "$hlog"
$ctl settings set health_interval 2 >/dev/null
lab_start_dante >/dev/null
check "dante back: up and pipelined again after a new test" wait_for 8 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status, pipelining FROM proxy_health WHERE proxy_id = 4')\" = 'up|1' ]"

# a change of the proxy (here: its port, to a closed one) forgets what was learnt
db "UPDATE proxies SET port = 1099 WHERE id = 4"
$ctl notify proxies >/dev/null
check "dante's row changed: pipelining = 0 at once" wait_for 2 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT pipelining FROM proxy_health WHERE proxy_id = 4') = 0 ]"
db "UPDATE proxies SET port = 1080 WHERE id = 4"
$ctl notify proxies >/dev/null
check "changed back: tested and pipelined again" wait_for 8 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status, pipelining FROM proxy_health WHERE proxy_id = 4')\" = 'up|1' ]"

# the operator's switch
$ctl settings set socks_pipelining false >/dev/null
check "socks_pipelining=false: every proxy lock-step" wait_for 2 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT sum(pipelining) FROM proxy_health') = 0 ]"
: >"$flog.mark"
n0=$(wc -l <"$flog")
check_eq "dante's client still served, lock-step" "$(fetch 192.168.2.13)" "$LAB_DANTE"
# (the line is written when the connection closes: wait for it, then read it)
check "... its access-log line is written" wait_for 3 bash -c "tail -n +$((n0 + 1)) $flog | grep -q 'client=192.168.2.13:.*close='"
check_fails "... and says not pipelined" bash -c "tail -n +$((n0 + 1)) $flog | grep 'client=192.168.2.13:.*close=' | grep -q ' pipelined'"
sleep 3
check_eq "stays off (no re-test while off)" "$(pl 4)" 0
check_fails "bad value refused" $ctl settings set socks_pipelining maybe
finish
