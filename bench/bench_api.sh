#!/usr/bin/env bash
# pgw-api: wrk against GET /api/v1/mappings with 256 mappings (bearer token), and against
# /healthz for the floor. Runs inside a lab namespace on its loopback; bounded (2 x 10 s).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
SECS=${SECS:-10}
lab_up >/dev/null || exit 1
export PGW_LAN_CIDR=10.0.0.0/8 PGW_JWT_SECRET=bench-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080
lab_pgw_env
echo 'bench-password' | "$PGW_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
{
	echo "BEGIN; INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'p', 'socks5', '198.51.100.10', 1080);"
	for ((i = 0; i < 256; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('10.0.$((i / 250)).$((1 + i % 250))', 1);"; done
	echo "COMMIT;"
} | sqlite3 "$PGW_DB"
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
pid=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 8080 >/dev/null || exit 1
tok=$(lab_exec gw curl -s -H 'Content-Type: application/json' -d '{"username":"admin","password":"bench-password"}' \
	http://127.0.0.1:8080/api/v1/auth/login | jq -r .token)
[ "$(lab_exec gw curl -s -H "Authorization: Bearer $tok" http://127.0.0.1:8080/api/v1/mappings | jq .total)" = 256 ] || exit 1
printf '%-28s %12s %10s %10s %10s\n' endpoint "requests/s" "p50 ms" "p99 ms" "RSS KiB"
for ep in /api/v1/mappings /healthz; do
	out=$(lab_exec gw wrk -t 2 -c 32 -d "${SECS}s" --latency -H "Authorization: Bearer $tok" "http://127.0.0.1:8080$ep")
	printf '%-28s %12s %10s %10s %10s\n' "GET $ep" "$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")" \
		"$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
		"$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
done
echo "wrk: 2 threads, 32 connections, ${SECS}s each, keep-alive; 256 mappings (response ~29 KB); a thread per connection."

# Under attack (issue 14, findings 2 and 5): pgw-api's peak memory and a second client's
# latency while someone tries 12 wrong logins at once, and while one address holds 1,100
# half-open connections. Before the fixes: 12 wrong logins all did their Argon2id work (peak RSS
# 76 -> 793 MB) and 1,000 half-open connections took the API down for everyone.
hwm() { awk '/VmHWM/ {print $2}' /proc/$pid/status; }
lat() { lab_exec gw curl -s -m 10 -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $tok" http://127.0.0.1:8080/api/v1/me | awk '{printf "%.0f", $1 * 1000}'; }
printf '\n%-44s %14s %14s %18s\n' attack "peak RSS KiB" "after KiB" "2nd client ms"
h0=$(hwm)
burst=()
for i in $(seq 12); do
	lab_exec gw curl -s -m 30 -o /dev/null --interface 127.0.0.9 -H 'Content-Type: application/json' \
		-d '{"username":"admin","password":"wrong-password"}' http://127.0.0.1:8080/api/v1/auth/login &
	burst+=($!)
done
l=$(lat)
wait "${burst[@]}"
printf '%-44s %14s %14s %18s\n' "12 concurrent wrong logins" "$h0" "$(hwm)" "$l"
cat >"$LAB_DIR/halfopen.py" <<'PY'
import socket, subprocess, sys, time
held = []
for i in range(1100):
    s = socket.socket(); s.bind(("127.0.0.8", 0)); s.settimeout(2)
    try:
        s.connect(("127.0.0.1", 8080)); s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"); held.append(s)
    except OSError:
        s.close()
time.sleep(0.5)
t0 = time.time()
subprocess.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"])
print("%.0f" % ((time.time() - t0) * 1000))
PY
h0=$(hwm)
l=$(lab_exec gw python3 "$LAB_DIR/halfopen.py")
printf '%-44s %14s %14s %18s\n' "1,100 half-open connections from one address" "$h0" "$(hwm)" "$l"
