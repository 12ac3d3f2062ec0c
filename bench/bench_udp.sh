#!/usr/bin/env bash
# UDP relay (issue 17): iperf3 -u and round trips from a LAN client to a UDP server in the WAN
# namespace, through pgw's UDP relay (TPROXY, then SOCKS5 UDP ASSOCIATE) via dante and via
# shadowsocks-libev's ss-local, next to the same traffic routed by the same gateway without a
# proxy (measured first, before pgw's table exists). Bounded: 3 iperf3 runs of SECS each and
# 5 x PINGS round trips (each under a timeout; a lost one waits 1 s).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
SECS=${SECS:-5}
RATE=${RATE:-200M}
PINGS=${PINGS:-2000}
lab_up >/dev/null || exit 1
lab_start_peers >/dev/null || exit 1
lab_start_dns >/dev/null || exit 1
lab_start_dante >/dev/null || exit 1
lab_start_ss >/dev/null || exit 1
lab_start_udp_echo 7777 >/dev/null || exit 1
lab_bg wan iperf3 iperf3 -s -B $LAB_ECHO -p 5201
lab_wait_port wan $LAB_ECHO 5201 || exit 1
lab_pgw_env

iperf() { # label client
	local j
	j=$(lab_exec lan timeout $((SECS + 20)) iperf3 -c $LAB_ECHO -p 5201 -B "$2" -u -b "$RATE" -l 1200 -t "$SECS" -J 2>/dev/null)
	printf '%-44s %10s %8s' "$1" \
		"$(jq -r '(.end.sum.bits_per_second // 0) / 1e6 | . * 10 | floor / 10' <<<"$j" 2>/dev/null)" \
		"$(jq -r '.end.sum.lost_percent // "-" | if type == "number" then (. * 10 | floor / 10) else . end' <<<"$j" 2>/dev/null)"
}
rtt() { # client
	lab_exec lan timeout $((PINGS / 100 + 30)) python3 "$ROOT/tests/e2e/udp_tool.py" ping "$1" $LAB_ECHO 7777 "$PINGS" |
		jq -r '"\(.p50_us) \(.p99_us) \(.lost)"'
}
up() { jq -r '.udp.datagrams_up // 0' <($PGW_BIN/pgwctl stats) 2>/dev/null || echo 0; }
row() { # label client
	local r a b
	r=$(rtt "$2")
	sleep 0.2 # the pings are counted before the reading
	a=$(up)
	iperf "$1" "$2"
	sleep 0.2
	b=$(up)
	printf ' %9s %9s %6s %10s\n' $r "$(( (b - a) / SECS / 1000 ))"
}
printf '%-44s %10s %8s %9s %9s %6s %10s\n' "UDP, iperf3 -u -b $RATE ${SECS}s; $PINGS round trips" "Mbit/s" "loss %" "p50 us" \
	"p99 us" "lost" "pgw kpps"
row "routed, no proxy (the gateway forwards)" 192.168.2.13

sqlite3 "$PGW_DB" "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'dante', 'socks5', '$LAB_DANTE', 1080),
        (2, 'ss-local', 'socks5', '$LAB_SS', 1080);
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1), ('192.168.2.11', 2);"
"$PGW_BIN/pgwctl" settings set udp_check "$LAB_DNS:53" >/dev/null
"$PGW_BIN/pgwctl" settings set dns_check_name "udpcheck.$LAB_ZONE" >/dev/null
"$PGW_BIN/pgwctl" settings set udp_client_pps 1000000 >/dev/null # the relay measured, not the limit
for d in agent forwarder healthd; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
for ((i = 0; i < 150; i++)); do
	[ "$(lab_exec gw nft list set inet pgw udp4 2>/dev/null | grep -o '192.168.2.1[01]' | sort -u | wc -l)" = 2 ] && break
	sleep 0.1
done
[ "$i" -lt 150 ] || { echo "bench_udp: the clients never got UDP (udp4 empty): $(sqlite3 "$PGW_DB" 'SELECT proxy_id, udp, udp_error FROM proxy_health')" >&2; exit 1; }
fwd=$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids")
for p in "dante:$LAB_DANTE" "ss-local:$LAB_SS"; do # the proxies' own relays, without pgw (from the gateway)
	printf '%-44s %10s %8s %9s %9s %6s %10s\n' "${p%%:*}'s own relay, no pgw (round trips only)" - - \
		$(lab_exec gw timeout $((PINGS / 100 + 30)) python3 "$ROOT/tests/e2e/udp_tool.py" socksping "${p#*:}" 1080 $LAB_ECHO 7777 "$PINGS" |
			jq -r '"\(.p50_us) \(.p99_us) \(.lost)"') -
done
row "pgw UDP relay via dante" 192.168.2.10
row "pgw UDP relay via ss-local (shadowsocks)" 192.168.2.11
echo "datagrams the gateway's kernel dropped for full receive buffers (all its sockets): $(lab_exec gw nstat -az UdpRcvbufErrors | awk '/UdpRcvbufErrors/ {print $2}')"
echo "RSS of pgw-forwarder after: $(awk '/VmRSS/ {print $2}' /proc/$fwd/status) kB; relay stats: $(jq -c '.udp | {sessions_opened, datagrams_up, datagrams_down, dropped: (.dropped | with_entries(select(.value > 0)))}' <($PGW_BIN/pgwctl stats))"
echo "Mbit/s and loss at the iperf3 server; pgw kpps: datagrams pgw's relay sent up per second (1,200 bytes each)."
echo "the routed row is the floor: one kernel hop, no proxy; the relay rows add pgw's relay and the proxy's own."
lab_down

