#!/usr/bin/env bash
# Where a new connection's CPU time goes (issue 24): wrk opens connections (Connection: close,
# 2 threads, 50 at a time) through pgw-forwarder (as it runs for dante) and through redsocks
# (Debian, splice), ROUNDS times each, in turns; for every process, its CPU time (user +
# system, from /proc/PID/stat) over each run, in µs a connection, and the whole machine's busy
# time (/proc/stat). wrk itself has exited when the second reading is taken: it is in "the rest"
# (the machine's time less the processes named). Bounded: about a minute and a half.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
. "$ROOT/bench/lib.sh"
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-2}
bench_dante_lab || exit 1
hz=$(getconf CLK_TCK)
# every process: pid, name, CPU ticks
procs() { for p in /proc/[0-9]*; do awk -v p="${p#/proc/}" '{print p, $2, $14 + $15}' "$p/stat" 2>/dev/null; done | sort; }
busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# run RELAY: one wrk run; prints "RELAY rate danted relay nginx rest machine" (µs a connection)
run() {
	local b0 b1 r
	procs >"$LAB_DIR/p0"
	b0=$(busy)
	r=$(lab_exec lan wrk -t 2 -c 50 -d "${SECS}s" -H 'Connection: close' "http://$LAB_WEB/ip" 2>/dev/null |
		awk '/Requests\/sec/ {printf "%d", $2}')
	b1=$(busy)
	procs >"$LAB_DIR/p1"
	join "$LAB_DIR/p0" "$LAB_DIR/p1" | awk -v m="$1" -v r="${r:-0}" -v s="$SECS" -v hz="$hz" -v box=$((b1 - b0)) '
		NF == 5 && $5 > $3 {d = $5 - $3
		 if ($2 == "(danted)") dante += d; else if ($2 == "(nginx)") ngx += d
		 else if ($2 == "(pgw-forwarder)" || $2 == "(redsocks)") relay += d}
		END {if (r == 0) {print m, "no rate"; exit}
		     f = 1e6 / hz / (r * s)
		     printf "%-14s %8d %10.0f %10.0f %10.0f %10.0f %10.0f\n", m, r, dante * f, relay * f, ngx * f,
		            (box - dante - relay - ngx) * f, box * f}'
}
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
for _ in $(seq 1 100); do lab_exec gw nft list set inet pgw active4 >/dev/null 2>&1 && break; sleep 0.1; done
printf '%-14s %8s %10s %10s %10s %10s %10s\n' relay "conn/s" "danted" "the relay" nginx "the rest" machine
for ((i = 1; i <= ROUNDS; i++)); do
	: >"$LAB_DIR/pgw-forwarder.log"
	lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
	fwd=$LAB_LAST_PID
	lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
	lab_exec lan curl -s -o /dev/null -m 5 "http://$LAB_WEB/ip"
	run pgw-forwarder
	lab_stop_pid "$fwd"
	bench_redsocks "$LAB_DANTE"
	lab_exec lan curl -s -o /dev/null -m 5 "http://$LAB_WEB/ip"
	run redsocks
	lab_stop_pid "$RS"
done
echo "µs of CPU a new connection, over ${SECS}s wrk runs (Connection: close) through each relay to nginx via dante, the"
echo "relays in turns; the rest: the machine's busy time less the processes named (wrk, softirqs charged to no task, others)."
