#!/usr/bin/env bash
# DNS (issue 16): dnsperf from a LAN client against pgw's resolver (dns_mode=proxy: through the
# client's SOCKS5 proxy to unbound over DNS over TCP), for cache hits and for misses, over UDP
# and over TCP from the client, next to a peer in the same run: dnsmasq as the usual caching
# forwarder on the gateway itself (dns_mode=local style: it asks the resolver over UDP from the
# gateway's own address, the leak pgw avoids), and the resolver asked directly (the floor).
# pgw keeps up to 4 connections to the resolver and puts a query on an idle one: unbound holds
# back a small answer until the one before is acknowledged (Nagle), see docs/PERFORMANCE.md.
# Bounded: 8 runs of SECS each. (dnsmasq as the upstream would close every TCP connection after
# 100 queries; unbound keeps it.)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
SECS=${SECS:-10}
HIT_QPS=${HIT_QPS:-5000}
MISS_QPS=${MISS_QPS:-2000}
lab_up >/dev/null || exit 1
lab_start_peers >/dev/null || exit 1
lab_start_dot >/dev/null || exit 1
lab_start_dante >/dev/null || exit 1
lab_pgw_env
"$PGW_BIN/pgwctl" settings set dns_upstream "$LAB_DOT:53" >/dev/null
"$PGW_BIN/pgwctl" settings set dns_check_name "www.$LAB_ZONE" >/dev/null
sqlite3 "$PGW_DB" "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'open', 'socks5', '${BENCH_PROXY:-$LAB_DANTE}', 1080);
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);"
for d in agent forwarder healthd; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
fwd=$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids")
for ((i = 0; i < 100; i++)); do
	lab_exec gw nft list set inet pgw active4 2>/dev/null | grep -qw 192.168.2.10 && break
	sleep 0.1
done
# the peer: dnsmasq caching on the gateway, forwarding to the same resolver
lab_bg gw dnsmasq-peer dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=192.168.2.1 --port=5300 --user=root --pid-file="$LAB_DIR/dnsmasq-peer.pid" \
	--server=$LAB_DOT --cache-size=10000
for ((i = 0; i < 100; i++)); do # pgw's DNS check passed: its clients are answered
	[ "$(sqlite3 "$PGW_DB" "SELECT dns_status FROM proxy_health WHERE proxy_id = 1")" = up ] && break
	sleep 0.1
done
lab_exec gw nft insert rule inet pgw lan_in udp dport 5300 accept # the peer may be asked from the LAN

# queries: one name over and over (hits), and names never asked before (misses: NXDOMAIN)
for i in $(seq 1 200); do echo "www.$LAB_ZONE A"; done >"$LAB_DIR/hit.txt"
for n in pgw pgwtcp peer direct; do
	for i in $(seq 1 $((MISS_QPS * SECS + 1000))); do echo "m$i-$n.$LAB_ZONE A"; done >"$LAB_DIR/miss-$n.txt"
done

# dnsperf -v prints one line per answer with its latency in seconds: p50 and p95 in ms
run() { # label ns server port file qps
	local out
	out=$(ip netns exec "$(lab_ns "$2")" dnsperf -s "$3" -p "$4" -d "$5" -Q "$6" -l "$SECS" -c 4 -t 2 -v \
		${7:+-a $7} ${8:+-m $8} 2>&1)
	printf '%-46s %8s %8s %8s %8s %8s\n' "$1" \
		"$(awk '/Queries per second/ {printf "%d", $4}' <<<"$out")" \
		"$(awk '/Queries lost/ {print $3}' <<<"$out")" \
		"$(grep -E '^> [A-Z]+ ' <<<"$out" | awk '{print $NF * 1000}' | sort -n | awk '{a[NR] = $1} END {if (NR) printf "%.3f", a[int(NR * 0.50) + 1]}')" \
		"$(grep -E '^> [A-Z]+ ' <<<"$out" | awk '{print $NF * 1000}' | sort -n | awk '{a[NR] = $1} END {if (NR) printf "%.3f", a[int(NR * 0.95) + 1]}')" \
		"$(awk '/VmRSS/ {print $2}' /proc/$fwd/status)"
}
# warm the cache and the upstream connection
ip netns exec "$(lab_ns lan)" dig -b 192.168.2.10 @192.168.2.1 www.$LAB_ZONE +short >/dev/null
ip netns exec "$(lab_ns lan)" dig -b 192.168.2.10 @192.168.2.1 -p 5300 www.$LAB_ZONE +short >/dev/null
printf '%-46s %8s %8s %8s %8s %8s\n' "resolver (dnsperf, $SECS s each)" "q/s" lost "p50 ms" "p95 ms" "fwd RSS"
run "pgw, cache hits at $HIT_QPS q/s" lan 192.168.2.1 53 "$LAB_DIR/hit.txt" "$HIT_QPS" 192.168.2.10
run "peer: dnsmasq on the gateway, hits" lan 192.168.2.1 5300 "$LAB_DIR/hit.txt" "$HIT_QPS" 192.168.2.10
run "pgw, cache hits over TCP (4 pipelining clients)" lan 192.168.2.1 53 "$LAB_DIR/hit.txt" "$HIT_QPS" 192.168.2.10 tcp
run "pgw, misses at $MISS_QPS q/s (via SOCKS5, DoTCP)" lan 192.168.2.1 53 "$LAB_DIR/miss-pgw.txt" "$MISS_QPS" 192.168.2.10
run "pgw, misses over TCP (4 pipelining clients)" lan 192.168.2.1 53 "$LAB_DIR/miss-pgwtcp.txt" "$MISS_QPS" 192.168.2.10 tcp
run "peer: dnsmasq on the gateway, misses (UDP)" lan 192.168.2.1 5300 "$LAB_DIR/miss-peer.txt" "$MISS_QPS" 192.168.2.10
run "floor: the resolver asked directly (UDP)" gw $LAB_DOT 53 "$LAB_DIR/miss-direct.txt" "$MISS_QPS"
sed 's/-direct/-tcp/' "$LAB_DIR/miss-direct.txt" >"$LAB_DIR/miss-tcp.txt"
run "floor: the resolver asked directly over TCP" gw $LAB_DOT 53 "$LAB_DIR/miss-tcp.txt" "$MISS_QPS" "" tcp
echo "hits: one name; misses: a new name each time (NXDOMAIN from unbound in the WAN namespace)."
echo "forwarder stats: $(jq -c '.dns | {queries, cache_hits, servfail, upstream_failures, upstream_connections, requeued}' <($PGW_BIN/pgwctl stats))"
echo "resolver connections that failed (log lines): $(grep -c 'dns: resolver' "$LAB_DIR/pgw-forwarder.log")"
lab_down
