#!/usr/bin/env bash
# System calls per new connection (issue 24): REQS sequential small HTTP requests through each
# relay, with strace -c attached to every thread of the relay; the relay's system calls divided
# by the connections (what it did for them, from accept to close, sessions kept ready included).
# Relays: pgw-forwarder as it runs (dante: sessions kept ready, the client's first bytes with
# the CONNECT), pgw-forwarder without sessions kept ready (pipelined, early bytes), lock-step,
# and redsocks (Debian, splice). Bounded: about a minute.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
. "$ROOT/bench/lib.sh"
REQS=${REQS:-200}
command -v strace >/dev/null || { echo "bench_syscalls: strace is missing (make deps)"; exit 1; }
bench_dante_lab || exit 1
db() { sqlite3 "$PGW_DB" "$@"; }
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
for _ in $(seq 1 100); do lab_exec gw nft list set inet pgw active4 >/dev/null 2>&1 && break; sleep 0.1; done
fetches() { for ((i = 0; i < $1; i++)); do lab_exec lan curl -s -o /dev/null -m 5 --interface 192.168.2.10 "http://$LAB_WEB/ip"; done; }

declare -A row
# count NAME PID: warm up, then REQS requests with strace on every thread of PID
count() {
	local name=$1 pid=$2 args=() t
	fetches 20
	for t in /proc/"$pid"/task/*; do args+=(-p "${t##*/}"); done
	strace -f -c -o "$LAB_DIR/strace-$name" "${args[@]}" 2>/dev/null &
	local sp=$!
	sleep 1
	fetches "$REQS"
	sleep 0.5
	kill -INT "$sp"
	wait "$sp" 2>/dev/null
	# strace -c: "% time, seconds, usecs/call, calls, [errors,] syscall": the calls are the 4th
	row[$name]=$(awk -v n="$REQS" '$NF == "total" {printf "%.1f", $4 / n}' "$LAB_DIR/strace-$name")
	row[$name.top]=$(awk -v n="$REQS" '$1 ~ /^[0-9.]+$/ && $NF != "total" {printf "%s %.1f\n", $NF, $4 / n}' \
		"$LAB_DIR/strace-$name" | sort -k2 -rn | head -6 | paste -sd, | sed 's/,/, /g')
}
reconf() {
	db "$1"
	kill -HUP "$fwd"
	sleep 0.5
}

lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
fwd=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
count pgw "$fwd"
reconf "UPDATE proxies SET preconnect = 0"
count pgw-no-preconnect "$fwd"
reconf "UPDATE proxy_health SET pipelining = 0, early_data = 0"
count pgw-lockstep "$fwd"
lab_stop_pid "$fwd"
bench_redsocks "$LAB_DANTE"
count redsocks "$RS"
lab_stop_pid "$RS"

printf '%-20s %14s   %s\n' relay "syscalls/conn" "most frequent (per connection)"
for r in pgw pgw-no-preconnect pgw-lockstep redsocks; do
	printf '%-20s %14s   %s\n' "$r" "${row[$r]}" "${row[$r.top]}"
done
echo "$REQS sequential requests of /ip (curl, a new connection each) through each relay to nginx via dante; strace -c"
echo "on every thread of the relay; sessions kept ready are counted with the connections that use them."
