#!/usr/bin/env bash
# pgw-forwarder against redsocks (Debian; its default, splice, and with splice = false) and
# against the client speaking SOCKS directly to the upstream, in one run, on the same lab and
# the same upstream (dante-server). pgw-agent's own ruleset redirects client TCP to whichever
# relay is measured, so only the relay differs.
# pgw-forwarder is measured twice: as it runs for dante (sessions kept ready, the pipelined
# SOCKS5 handshake and the client's first bytes with the CONNECT: what pgw-healthd finds dante
# takes) and with none of that (lock-step, a connection to the proxy opened per client one).
# Measures: throughput (iperf3 through the relay; curl download for all three), relay CPU time
# per GB (from /proc) and the machine's (/proc/stat), new connections per second (wrk,
# Connection: close; the median of ROUNDS rounds, the relays alternating within each and their
# order reversed every other round, so a drift of the shared machine does not favour one),
# sequential small-request latency P50/P95 (over the samples of the same rounds), a download's
# throughput during a connection storm, relay RSS.
# Bounded: about 4 minutes.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
. "$ROOT/bench/lib.sh"
SECS=${SECS:-5}
REQS=${REQS:-200}
ROUNDS=${ROUNDS:-3}
bench_dante_lab || exit 1
lab_bg wan iperf3 iperf3 -s -B $LAB_WEB
truncate -s 2G "$LAB_DIR/www/files/big.bin"
cat "$LAB_DIR/www/files/big.bin" >/dev/null # into the page cache: the first relay measured must not pay for it
db() { sqlite3 "$PGW_DB" "$@"; }
C=192.168.2.10
lan() { lab_exec lan "$@"; }
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_of() { awk '{print $14}' "/proc/$1/stat"; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.2f", a[i]*1000}'; }

# measure MODE RELAY_PID CURL_PROXY_ARGS...: prints one table row
measure() {
	local mode=$1 pid=$2
	shift 2
	local t0 t1 bytes gbps cpu0 cpu1 cpu_gb ip3 p50 p95 rss box0 box1 box_gb storm
	lan curl -s -o /dev/null --interface $C "$@" "http://$LAB_WEB/ip" || { echo "$mode: no path"; return 1; }
	# throughput: 2 GB download (curl), relay CPU over it
	[ "$pid" != - ] && cpu0=$(cpu_of "$pid") && usr0=$(user_of "$pid")
	box0=$(box_busy)
	t0=$(date +%s%N)
	bytes=$(lan curl -s -o /dev/null -w '%{size_download}' --interface $C "$@" "http://$LAB_WEB/files/big.bin")
	t1=$(date +%s%N)
	box1=$(box_busy)
	box_gb=$(awk -v a="$box0" -v b="$box1" -v hz="$(getconf CLK_TCK)" -v by="$bytes" 'BEGIN {printf "%.2f", (b - a) / hz / (by / 1e9)}')
	gbps=$(awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", b * 8 / ns}')
	if [ "$pid" != - ]; then
		cpu1=$(cpu_of "$pid")
		usr1=$(user_of "$pid")
		cpu_gb=$(awk -v a="$cpu0" -v b="$cpu1" -v u0="$usr0" -v u1="$usr1" -v hz="$(getconf CLK_TCK)" -v by="$bytes" \
			'BEGIN {printf "%.3f(u%.3f)", (b - a) / hz / (by / 1e9), (u1 - u0) / hz / (by / 1e9)}')
	else
		cpu_gb=n/a
	fi
	if [ $# -eq 0 ]; then
		ip3=$(lan iperf3 -c $LAB_WEB -B $C -t "$SECS" -J 2>/dev/null | jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | floor / 100')
		# a connection storm (wrk, Connection: close) against a download already running
		lan curl -s -o /dev/null -w '%{size_download}' -m "$SECS" --interface $C "http://$LAB_WEB/files/big.bin" >"$LAB_DIR/storm-dl" &
		local dl=$!
		sleep 0.5
		lan wrk -t 2 -c 50 -d "$((SECS - 1))s" -H 'Connection: close' "http://$LAB_WEB/ip" >/dev/null 2>&1
		wait "$dl"
		storm=$(awk -v s="$SECS" '{printf "%.2f", $1 * 8 / s / 1e9}' "$LAB_DIR/storm-dl")
	else
		ip3=n/a storm=n/a # iperf3 and wrk cannot speak SOCKS
	fi
	rss=$([ "$pid" != - ] && awk '/VmRSS/ {print $2}' "/proc/$pid/status" || echo n/a)
	row[$mode]="${gbps:-?} ${ip3:-?} ${cpu_gb:-?} ${box_gb:-?} ${storm:-?} ${rss:-?}" # read back by field
}
declare -A row cps ccpu
# lat_round MODE N [CURL_PROXY_ARGS...]: N sequential small requests (a new connection each), each
# one's time added to MODE's samples. Taken in the same alternating rounds as the connection rate,
# so that P50 and P95 do not depend on when each relay was measured on a shared machine.
lat_round() {
	local mode=$1 n=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		lan curl -s -m 10 -o /dev/null -w '%{time_total}\n' --interface $C "$@" "http://$LAB_WEB/ip"
	done >>"$LAB_DIR/lat-$mode"
}
# cps_round MODE PID: one wrk run of new connections (Connection: close) through the relay now up
# (PID): its rate, and the relay's CPU time (user + system) a connection over it
cps_round() {
	local c0 c1 r
	c0=$(cpu_of "$2")
	r=$(lan wrk -t 2 -c 50 -d "${SECS}s" -H 'Connection: close' "http://$LAB_WEB/ip" 2>/dev/null |
		awk '/Requests\/sec/ {printf "%d", $2}')
	c1=$(cpu_of "$2")
	cps[$1]+="$r "
	ccpu[$1]+="$(awk -v a="$c0" -v b="$c1" -v r="$r" -v s="$SECS" -v hz="$(getconf CLK_TCK)" \
		'BEGIN {if (r > 0) printf "%.0f", (b - a) / hz * 1e6 / (r * s)}') "
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print NR ? a[int((NR + 1) / 2)] : "n/a"}'; }
# the machine's busy CPU time (all processes, interrupts and softirqs), in clock ticks
box_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
wait_for() { local i; for ((i = 0; i < 100; i++)); do "$@" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_for lab_exec gw nft list set inet pgw active4 >/dev/null

# pgw-forwarder as it runs for dante: sessions kept ready, pipelined, early bytes (e2e 17, 41)
pgw_mode() {
	if [ "$1" = lockstep ]; then # one connection to the proxy each, opened when the client connects
		db "UPDATE proxy_health SET pipelining = 0, early_data = 0; UPDATE proxies SET preconnect = 0"
	else
		db "UPDATE proxy_health SET pipelining = 1, early_data = 1; UPDATE proxies SET preconnect = 1"
	fi
	kill -HUP "$fwd"
	sleep 0.3
}
pgw_up() {
	lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
	fwd=$LAB_LAST_PID
	wait_for grep -q 'listening on port' "$LAB_DIR/pgw-forwarder.log"
	pgw_mode pool
}
# Debian's redsocks splices by default; its buffer-copying mode (libevent bufferevents) for context
rs_up() { bench_redsocks "$LAB_DANTE" "" "$([ "$1" = redsocks-copy ] && echo 'splice = false;')"; }
pgw_up
measure pgw-forwarder "$fwd"
pgw_mode lockstep
measure pgw-lockstep "$fwd"
lab_stop_pid "$fwd"
for r in redsocks redsocks-copy; do
	rs_up $r
	measure $r "$RS"
	lab_stop_pid "$RS"
done
# new connections per second: the relays in turn, ROUNDS times, every other round in reverse
for ((i = 1; i <= ROUNDS; i++)); do
	for side in $( ((i % 2)) && echo "pgw rs" || echo "rs pgw"); do
		if [ $side = pgw ]; then
			pgw_up
			cps_round pgw-forwarder "$fwd"
			lat_round pgw-forwarder $((REQS / ROUNDS))
			pgw_mode lockstep
			cps_round pgw-lockstep "$fwd"
			lat_round pgw-lockstep $((REQS / ROUNDS))
			lab_stop_pid "$fwd"
		else
			for r in redsocks redsocks-copy; do
				rs_up $r
				cps_round $r "$RS"
				lat_round $r $((REQS / ROUNDS))
				lab_stop_pid "$RS"
			done
		fi
	done
done

# direct: no pgw table, the gateway just routes; the client speaks SOCKS to dante itself
lab_stop_pid "$(awk '$2 == "pgw-agent" {print $1}' "$LAB_DIR/pids")"
lab_exec gw "$PGW_BIN/pgw-agent" --flush >/dev/null
measure direct-socks - --socks5 $LAB_DANTE:1080
lat_round direct-socks $((REQS / ROUNDS * ROUNDS)) --socks5 $LAB_DANTE:1080
printf '%-14s %12s %14s %16s %12s %10s %10s %12s %12s %14s %9s  %s\n' relay "curl Gbit/s" "iperf3 Gbit/s" "CPU s/GB" "box CPU s/GB" "P50 ms" "P95 ms" "new conn/s" "µs CPU/conn" "storm Gbit/s" "RSS KiB" "conn/s rounds"
for m in pgw-forwarder pgw-lockstep redsocks redsocks-copy direct-socks; do
	[ -n "${row[$m]:-}" ] || continue
	read -r gbps ip3 cpu_gb box_gb storm rss <<<"${row[$m]}"
	p50=$(pct 50 <"$LAB_DIR/lat-$m") p95=$(pct 95 <"$LAB_DIR/lat-$m")
	printf '%-14s %12s %14s %16s %12s %10s %10s %12s %12s %14s %9s  %s\n' "$m" "$gbps" "$ip3" "$cpu_gb" "$box_gb" "$p50" "$p95" \
		"$(median <<<"${cps[$m]:-}")" "$(median <<<"${ccpu[$m]:-}")" "$storm" "$rss" "${cps[$m]:-}"
done
p=$(median <<<"${cps[pgw-forwarder]:-}") q=$(median <<<"${cps[redsocks]:-}")
awk -v p="$p" -v q="$q" 'BEGIN {if (p ~ /^[0-9]+$/ && q ~ /^[0-9]+$/ && q > 0) printf "new conn/s, pgw-forwarder / redsocks (splice), medians: %.2fx\n", p / q}'
# each round's own ratio: the two relays measured within seconds of each other, so the machine's drift
# between rounds (a shared machine's neighbours) shows as the spread of these, not in any one of them
paste <(tr ' ' '\n' <<<"${cps[pgw-forwarder]:-}" | grep .) <(tr ' ' '\n' <<<"${cps[redsocks]:-}" | grep .) |
	awk '$2 > 0 {printf "%s%.2fx", n++ ? " " : "new conn/s, pgw-forwarder / redsocks (splice), each round: ", $1 / $2} END {if (n) print ""}'
p=$(median <<<"${ccpu[pgw-forwarder]:-}") q=$(median <<<"${ccpu[redsocks]:-}")
awk -v p="$p" -v q="$q" 'BEGIN {if (p ~ /^[0-9]+$/ && q ~ /^[0-9]+$/ && q > 0) printf "relay CPU a new connection, pgw-forwarder / redsocks (splice), medians: %.2fx\n", p / q}'
echo "Same lab, same upstream (dante), client 192.168.2.10; ${SECS}s iperf3/wrk runs; P50/P95: $((REQS / ROUNDS * ROUNDS))"
echo "sequential requests a relay (curl, a new connection each), $((REQS / ROUNDS)) in each round of the connection rate's;"
echo "new conn/s: the median of $ROUNDS wrk runs a relay (Connection: close), the relays taking turns; µs CPU/conn:"
echo "the relay's own CPU time (user + system, softirqs it ran included) a connection over those runs, median."
echo "curl: one 2 GB download; CPU s/GB: the relay's user+system CPU over that download (u: user-space part); box CPU"
echo "s/GB: the whole machine's busy time over it (/proc/stat: every process, interrupts, softirqs); storm: a download's"
echo "throughput while wrk opens new connections (Connection: close) for $((SECS - 1)) of its $SECS s."
