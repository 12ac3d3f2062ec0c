#!/usr/bin/env bash
# pgw-healthd at scale: 1,000 proxies (rows) spread over 50 real microsocks processes in the
# lab, all probed concurrently by one healthd through each proxy to the lab's /ip. Measures
# the first full round, a second round within one 30 s interval, CPU time and RSS. Bounded:
# about 40 s.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
N=${PROXIES:-1000}
BACKENDS=${BACKENDS:-50}
lab_up >/dev/null || exit 1
lab_start_nginx >/dev/null || exit 1
lab_pgw_env
db() { sqlite3 -cmd "PRAGMA foreign_keys = ON" "$PGW_DB" "$@"; }
for ((i = 0; i < BACKENDS; i++)); do
	lab_bg wan "ms-$i" microsocks -i 198.51.100.10 -p $((2000 + i)) -b 198.51.100.10
done
lab_wait_port wan 198.51.100.10 $((2000 + BACKENDS - 1)) || exit 1
{
	echo "BEGIN;"
	for ((i = 0; i < N; i++)); do
		echo "INSERT INTO proxies (name, type, host, port) VALUES ('p$i', 'socks5', '198.51.100.10', $((2000 + i % BACKENDS)));"
	done
	echo "COMMIT;"
} | db
"$PGW_BIN/pgwctl" settings set health_interval 30 >/dev/null
"$PGW_BIN/pgwctl" settings set health_timeout 5 >/dev/null
t0=$(date +%s%N)
lab_bg gw healthd "$PGW_BIN/pgw-healthd"
pid=$LAB_LAST_PID
for ((k = 0; k < 600; k++)); do
	[ "$(db "SELECT count(*) FROM proxy_health WHERE status != 'unknown'")" = "$N" ] && break
	sleep 0.05
done
first_ms=$((($(date +%s%N) - t0) / 1000000))
up=$(db "SELECT count(*) FROM proxy_health WHERE status = 'up'")
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
# the second round comes 30 s after each proxy's first probe
sleep 32
rounds=$(db "SELECT min(c) FROM (SELECT count(*) c FROM health_history GROUP BY proxy_id)")
cpu2=$(awk '{print $14 + $15}' /proc/$pid/stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hz=$(getconf CLK_TCK)
p50=$(db "SELECT latency_ms FROM proxy_health ORDER BY latency_ms LIMIT 1 OFFSET $((N / 2))")
p95=$(db "SELECT latency_ms FROM proxy_health ORDER BY latency_ms LIMIT 1 OFFSET $((N * 95 / 100))")
printf '%-8s %-9s %14s %10s %12s %16s %14s %9s\n' proxies backends "first round ms" "up" "probe p50/p95" "rounds in 32 s" "CPU s / round" "RSS KiB"
printf '%-8s %-9s %14s %10s %12s %16s %14s %9s\n' "$N" "$BACKENDS" "$first_ms" "$up/$N" "$p50/$p95 ms" "$rounds (min)" \
	"$(awk -v a="$cpu1" -v b="$cpu2" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')" "$rss"
echo "first round: from start until every proxy has a status (all probes in flight at once on one event loop)."
echo "rounds: fewest probes any proxy had within 32 s (2 = every proxy probed again within its 30 s interval)."
echo "CPU s / round: healthd user+system CPU for the second round of $N probes (includes SQLite writes)."
