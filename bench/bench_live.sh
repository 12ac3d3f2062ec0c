#!/usr/bin/env bash
# Live operations at scale (issue 20): 1,000 mapped clients (IPv6, one address each) holding
# 5,000 relayed connections (5 each; a holder server answers a few bytes a second on each).
# Measured: GET /api/v1/connections (a page of 100, filtered by client, a deep page by cursor,
# a page of 1,000), the dashboard's Connections view in Chromium (fetch + render 200 rows, and
# rendering 1,000), and the largest SSE message while it all runs, against the stats the
# old forwarder event carried whole. Bounded: ~60 s.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
N_CLIENTS=${N_CLIENTS:-1000}
PER_CLIENT=${PER_CLIENT:-5} # pgw-forwarder holds 2 sockets each, and a pipe only while data is in flight
lab_up >/dev/null || exit 1
lab_start_nginx >/dev/null || exit 1
lab_bg wan microsocks bash -c "ulimit -n \$(ulimit -Hn); exec microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH"
export PGW_JWT_SECRET=bench-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080 PGW_LOG_LEVEL=warn PGW_WEB_DIR=$ROOT/web
lab_pgw_env
ctl=$PGW_BIN/pgwctl
echo 'bench-password' | $ctl user add admin --role admin --password-stdin >/dev/null
addr() { printf 'fd00:2::1:%x' "$1"; }
{
	echo "BEGIN; INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);"
	for ((i = 0; i < N_CLIENTS; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('$(addr $i)', 1);"; done
	echo "COMMIT;"
} | sqlite3 "$PGW_DB"
for ((i = 0; i < N_CLIENTS; i++)); do echo "addr add $(addr $i)/64 dev lan0 nodad"; done | lab_exec lan ip -b -
# the far end: holds every connection, sends 64 bytes a second on each
cat >"$LAB_DIR/holder.py" <<'PY'
import asyncio, resource, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
async def serve(r, w):
    try:
        while True:
            w.write(b"x" * 64); await w.drain(); await asyncio.sleep(1)
    except Exception:
        pass
async def main():
    s = await asyncio.start_server(serve, host=sys.argv[1:], port=7000, backlog=4096)
    await s.serve_forever()
asyncio.run(main())
PY
lab_bg wan holder python3 "$LAB_DIR/holder.py" "$LAB_WEB6" "$LAB_WEB"
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
lab_wait_port gw 127.0.0.1 8080 >/dev/null || exit 1
sleep 1 # the holder (python) starts slower than a port check
lab_wait_port wan "$LAB_WEB" 7000 >/dev/null || exit 1
tok=$(lab_exec gw curl -s -H 'Content-Type: application/json' -d '{"username":"admin","password":"bench-password"}' \
	http://127.0.0.1:8080/api/v1/auth/login | jq -r .token)
H="Authorization: Bearer $tok"
api() { lab_exec gw curl -s -m 10 -H "$H" "http://127.0.0.1:8080$1"; }
for _ in $(seq 1 60); do
	[ "$(api /api/v1/clients | jq '[.items[] | select(.state == "active")] | length')" = "$N_CLIENTS" ] && break
	sleep 0.5
done
# the clients: PER_CLIENT connections from each address, held open (until the bench ends)
cat >"$LAB_DIR/clients.py" <<'PY'
import resource, socket, sys, time
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
n, per, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for i in range(n):
    for _ in range(per):
        s = socket.socket(socket.AF_INET6); s.settimeout(5)
        try:
            s.bind(("fd00:2::1:%x" % i, 0)); s.connect((dst, 7000)); held.append(s)
        except OSError as e:
            print("connect:", e, file=sys.stderr); s.close()
print(len(held), flush=True)
time.sleep(600)
PY
lab_bg lan clients python3 "$LAB_DIR/clients.py" "$N_CLIENTS" "$PER_CLIENT" "$LAB_WEB6"
want=$((N_CLIENTS * PER_CLIENT))
for _ in $(seq 1 120); do
	total=$(api '/api/v1/connections?limit=1' | jq .total)
	[ "${total:-0}" -ge "$want" ] && break
	sleep 0.5
done
echo "# $total relayed connections from $N_CLIENTS clients (wanted $want)"
[ "${total:-0}" -ge "$want" ] || { echo "# not all connections came up"; exit 1; }
sleep 2 # a tick: rates filled in

# ms (p50 p95 max) of 30 GETs of path
timed() {
	for _ in $(seq 1 30); do
		lab_exec gw curl -s -o /dev/null -w '%{time_total}\n' -H "$H" "http://127.0.0.1:8080$1"
	done | awk '{print $1 * 1000}' | sort -n | awk '{v[NR] = $1} END {printf "%.1f %.1f %.1f", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.95 + 0.5)], v[NR]}'
}
mid=$(api '/api/v1/connections?limit=1000&cursor=0' | jq '.connections[499].id')
printf '%-52s %8s %8s %8s %10s\n' "GET (with $total connections, $N_CLIENTS clients)" "p50 ms" "p95 ms" "max ms" "target"
for q in "?limit=100" "?client=$(addr 500)" "?limit=100&cursor=$mid" "?limit=1000"; do
	read -r p50 p95 mx <<<"$(timed "/api/v1/connections$q")"
	printf '%-52s %8s %8s %8s %10s\n' "/api/v1/connections$q" "$p50" "$p95" "$mx" "$([ "$q" = "?limit=1000" ] && echo - || echo '< 50')"
done
read -r p50 p95 mx <<<"$(timed "/api/v1/clients")"
printf '%-52s %8s %8s %8s %10s\n' "/api/v1/clients (reference: $N_CLIENTS clients)" "$p50" "$p95" "$mx" "-"

# the browser: the Connections view
if [ -d "$ROOT/tests/web/node_modules/playwright-core" ]; then
	ui=$(cd "$ROOT/tests/web" && PGW_URL=http://127.0.0.1:8080/ ADMIN_PASSWORD=bench-password timeout 120 \
		ip netns exec "$(lab_ns gw)" node bench_conns.mjs 2>&1)
	echo
	jq -e . <<<"$ui" >/dev/null 2>&1 || { echo "# the browser part failed: $(head -c 600 <<<"$ui" | tr "\n" " ")"; ui='{}'; }
	printf '%-52s %8s %10s\n' "Connections view (Chromium)" "ms" "target"
	printf '%-52s %8s %10s\n' "open the view: fetch and render the first 200" "$(jq -r .open <<<"$ui")" "< 200"
	printf '%-52s %8s %10s\n' "a refresh (every 2 s while shown)" "$(jq -r .refresh <<<"$ui")" "< 200"
	printf '%-52s %8s %10s\n' "render the $(jq -r .rows <<<"$ui") rows shown after More" "$(jq -r .render1000 <<<"$ui")" "< 200"
fi

# live updates: the largest SSE message while all this runs
lab_exec gw curl -s -N -m 6 -H "$H" http://127.0.0.1:8080/api/v1/events >"$LAB_DIR/sse" 2>/dev/null
biggest=$(awk '/^data: / {if (length($0) > m) m = length($0)} END {print m + 0}' "$LAB_DIR/sse")
echo
printf '%-52s %10s %10s\n' "SSE" "bytes" "bound"
printf '%-52s %10s %10s\n' "largest SSE message in 6 s" "$biggest" "4096"
printf '%-52s %10s %10s\n' "the forwarder's stats (the old event carried them whole)" "$("$PGW_BIN/pgwctl" stats | wc -c)" "-"
pid=$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids" | tail -1)
echo "# pgw-forwarder with $total connections: $(lab_fds "$pid") descriptors, RSS $(awk '/VmRSS/ {print $2}' /proc/"$pid"/status) KiB; pgw-api: $(awk '/VmRSS/ {print $2}' /proc/"$(awk '$2 == "pgw-api" {print $1}' "$LAB_DIR/pids" | tail -1)"/status) KiB"
