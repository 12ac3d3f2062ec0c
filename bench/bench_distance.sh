#!/usr/bin/env bash
# Connection setup over distance (issue 24): time to first byte of a small HTTP request through
# each relay, with the proxies DELAY_MS (default 20) ms away each way, and with no delay, in one
# run on the same lab. This kernel has no netem: the wan namespace sends every packet that crosses
# its link to the gateway through NFQUEUE (iptables) to bench/nfq_delay, which holds it DELAY_MS and lets it
# go. Relays: pgw-forwarder as it runs (dante: sessions kept ready, the client's first bytes
# with the CONNECT), without the early bytes, without sessions kept ready (pipelined handshake
# with the early bytes), lock-step with neither; pgw-forwarder to an authenticating proxy
# (microsocks, user and password: sessions kept ready, no early bytes: it drops them); redsocks
# (Debian, splice) and the client speaking SOCKS5 to dante itself (curl --socks5). The floor of
# a proxied connection is one round trip to the proxy plus the proxy's own connect; the table
# says how many round trips each relay costs (TTFB / RTT). Bounded: about 2 minutes.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
. "$ROOT/bench/lib.sh"
REQS=${REQS:-40}
DELAY_MS=${DELAY_MS:-20}
NFQ=$ROOT/build/bench/nfq_delay
if [ ! -x "$NFQ" ] || [ "$ROOT/bench/nfq_delay.c" -nt "$NFQ" ]; then
	mkdir -p "$(dirname "$NFQ")"
	cc -O2 -Wall -Wextra -Werror -o "$NFQ" "$ROOT/bench/nfq_delay.c" $(pkg-config --cflags --libs libnetfilter_queue) ||
		{ echo "bench_distance: cannot build nfq_delay (libnetfilter-queue-dev: make deps)"; exit 1; }
fi
bench_lab_up || exit 1
# The delay holds the proxies' packets in their own host (wan's OUTPUT), where the kernel counts
# them as not yet sent: TCP autocorking then holds a small write behind two unacknowledged ones
# until one has left, DELAY_MS later (dante's GET answer behind its method and CONNECT replies).
# On a real network a packet leaves the host at once and the delay is on the wire.
lab_exec wan sysctl -qw net.ipv4.tcp_autocorking=0
lab_start_nginx >/dev/null || exit 1
lab_start_dante >/dev/null || exit 1
lab_start_peers >/dev/null || exit 1
lab_pgw_env
db() { sqlite3 "$PGW_DB" "$@"; }
db "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'dante', 'socks5', '$LAB_DANTE', 1080);
    INSERT INTO proxies (id, name, type, host, port, username, password) VALUES (2, 'microsocks-auth', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS');
    UPDATE proxy_health SET status = 'up', pipelining = proxy_id = 1, early_data = proxy_id = 1, fresh_until = unixepoch() + 86400;
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1), ('192.168.2.11', 2);"
lan() { lab_exec lan "$@"; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.1f", a[i]*1000}'; }
wait_for() { local i; for ((i = 0; i < 100; i++)); do "$@" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

delay_on() { # the iptables NFQUEUE target (this kernel has no nft queue expression)
	lab_exec wan iptables -t mangle -A PREROUTING -i wan0 -j NFQUEUE --queue-num 0 --queue-bypass &&
		lab_exec wan iptables -t mangle -A OUTPUT -o wan0 -j NFQUEUE --queue-num 0 --queue-bypass || return 1
	lab_bg wan nfq-delay "$NFQ" 0 "$DELAY_MS" 600
	NFQ_PID=$LAB_LAST_PID
	wait_for grep -q 'nfq_delay ready' "$LAB_DIR/nfq-delay.log"
}
delay_off() {
	lab_exec wan iptables -t mangle -F PREROUTING
	lab_exec wan iptables -t mangle -F OUTPUT
	lab_stop_pid "$NFQ_PID"
}
rtt_ms() { # the gateway's round trip to dante, ms (ping: 10 of them, the median)
	lab_exec gw ping -n -q -c 10 -i 0.05 $LAB_DANTE | awk -F/ '/rtt|round-trip/ {printf "%.1f", $5}'
}

# ttfb CLIENT CURL_ARGS...: REQS sequential small requests; p50 and p95 time to first byte (ms)
ttfb() {
	local c=$1
	shift
	for ((i = 0; i < 10; i++)); do # warm up: sessions kept ready follow the connection rate
		lan curl -s -o /dev/null -m 10 --interface "$c" "$@" "http://$LAB_WEB/ip"
	done
	for ((i = 0; i < REQS; i++)); do
		lan curl -s -o /dev/null -w '%{time_starttransfer}\n' -m 10 --interface "$c" "$@" "http://$LAB_WEB/ip"
	done >"$LAB_DIR/ttfb"
	echo "$(pct 50 <"$LAB_DIR/ttfb") $(pct 95 <"$LAB_DIR/ttfb")"
}

reconf() { # SQL: change what the forwarder knows, and make it reload
	db "$1"
	kill -HUP "$fwd"
	sleep 0.3
}
declare -A near far
run_all() { # near|far: every relay, its p50 and p95
	local -n out=$1
	lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
	fwd=$LAB_LAST_PID
	wait_for grep -q 'listening on port' "$LAB_DIR/pgw-forwarder.log"
	out[pgw]=$(ttfb 192.168.2.10)
	out[pgw-auth]=$(ttfb 192.168.2.11)
	reconf "UPDATE proxy_health SET early_data = 0"
	out[pgw-no-early]=$(ttfb 192.168.2.10)
	reconf "UPDATE proxies SET preconnect = 0; UPDATE proxy_health SET early_data = 1 WHERE proxy_id = 1"
	out[pgw-no-preconnect]=$(ttfb 192.168.2.10)
	reconf "UPDATE proxy_health SET pipelining = 0, early_data = 0"
	out[pgw-lockstep]=$(ttfb 192.168.2.10)
	db "UPDATE proxies SET preconnect = 1; UPDATE proxy_health SET pipelining = 1, early_data = 1 WHERE proxy_id = 1"
	lab_stop_pid "$fwd"
	bench_redsocks "$LAB_DANTE"
	out[redsocks]=$(ttfb 192.168.2.10)
	lab_stop_pid "$RS"
	# the client speaking SOCKS5 itself: pgw's table must not redirect it, so no agent meanwhile
	lab_stop_pid "$(awk '$2 == "pgw-agent" {print $1}' "$LAB_DIR/pids" | tail -1)"
	lab_exec gw "$PGW_BIN/pgw-agent" --flush >/dev/null
	out[direct-socks]=$(ttfb 192.168.2.10 --socks5 $LAB_DANTE:1080)
	lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
	wait_for lab_exec gw nft list set inet pgw active4 >/dev/null
}

lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
wait_for lab_exec gw nft list set inet pgw active4 >/dev/null
rtt0=$(rtt_ms)
run_all near
delay_on || { echo "bench_distance: the delay does not start (NFQUEUE)"; exit 1; }
rtt1=$(rtt_ms)
run_all far
delay_off
tail -1 "$LAB_DIR/nfq-delay.log"

printf '%-18s %13s %13s %13s %13s %8s\n' relay "P50 ms near" "P95 ms near" "P50 ms far" "P95 ms far" "RTs far"
for r in pgw pgw-no-early pgw-no-preconnect pgw-lockstep pgw-auth redsocks direct-socks; do
	read -r n50 n95 <<<"${near[$r]}"
	read -r f50 f95 <<<"${far[$r]}"
	printf '%-18s %13s %13s %13s %13s %8s\n' "$r" "$n50" "$n95" "$f50" "$f95" \
		"$(awk -v f="$f50" -v n="$n50" -v r="$rtt1" 'BEGIN {printf "%.1f", (f - n) / r}')"
done
echo "Round trip gateway-proxy: ${rtt0} ms near, ${rtt1} ms far (${DELAY_MS} ms each way, NFQUEUE). $REQS sequential"
echo "requests of /ip per relay; time to first byte (curl time_starttransfer). RTs far: (far - near) / RTT, the round"
echo "trips to the proxy a new connection costs; the floor (a pre-connected, greeted session) is 1 plus the proxy's connect."
