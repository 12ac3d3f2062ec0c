#!/usr/bin/env bash
# Scale (issue 24): N idle relayed connections held through pgw-forwarder and through redsocks
# (Debian, splice), in one run on the same lab and proxy (microsocks, no auth). Each connection
# is proven relayed end to end (the far side's hello byte reaches the client), then held idle.
# Per connection: the relay's descriptors, its user-space memory (RSS growth, and the peak while
# they opened), and the kernel's (slab growth: every socket of the lab, six a connection:
# client, relay x2, proxy x2, server). This machine caps a process at 20,000 descriptors
# (ulimit -Hn, no CAP_SYS_RESOURCE to raise it) and a relay holds two a connection, so N stays
# under 10,000 here. Bounded: about 2 minutes.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
N=${N:-9000}
N_CLIENTS=${N_CLIENTS:-30}
lab_up >/dev/null || exit 1
for n in lan gw wan; do
	lab_exec $n sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
done
lab_bg wan microsocks bash -c "ulimit -n \$(ulimit -Hn); exec microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH"
lab_wait_port wan $LAB_SOCKS_NOAUTH 1080 >/dev/null || exit 1
lab_pgw_env
addr() { echo "192.168.2.$((100 + $1))"; }
{
	echo "BEGIN; INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);"
	echo "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400;"
	for ((i = 0; i < N_CLIENTS; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('$(addr $i)', 1);"; done
	echo "COMMIT;"
} | sqlite3 "$PGW_DB"
for ((i = 0; i < N_CLIENTS; i++)); do lab_exec lan ip addr add "$(addr $i)/24" dev lan0; done
cat >"$LAB_DIR/holder.py" <<'PY'
import asyncio, resource, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
held = []
async def serve(r, w):
    w.write(b"h"); await w.drain(); held.append(w)
    await r.read()  # until the client goes
    w.close()
async def main():
    s = await asyncio.start_server(serve, host=sys.argv[1], port=7000, backlog=4096)
    await s.serve_forever()
asyncio.run(main())
PY
cat >"$LAB_DIR/clients.py" <<'PY'
import asyncio, os, resource, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
n, dst, srcs, done = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
async def one(i, sem, held):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(dst, 7000, local_addr=(srcs[i % len(srcs)], 0)), 10)
            if await asyncio.wait_for(r.readexactly(1), 10) == b"h":
                held.append(w)
        except Exception as e:
            pass
async def main():
    held, sem = [], asyncio.Semaphore(256)
    await asyncio.gather(*(one(i, sem, held) for i in range(n)))
    print(len(held), flush=True)
    while not os.path.exists(done):
        await asyncio.sleep(0.2)
    for w in held:
        w.close()
asyncio.run(main())
PY
lab_bg wan holder python3 "$LAB_DIR/holder.py" "$LAB_WEB"
sleep 1
lab_wait_port wan "$LAB_WEB" 7000 >/dev/null || exit 1
srcs=$(for ((i = 0; i < N_CLIENTS; i++)); do addr $i; done | paste -sd,)
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
for _ in $(seq 1 100); do lab_exec gw nft list set inet pgw active4 2>/dev/null | grep -q "$(addr 0)" && break; sleep 0.1; done

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
fds_of() { ls "/proc/$1/fd" | wc -l; }
slab() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
declare -A row
# measure NAME PID: open N, hold, measure, close
measure() {
	local name=$1 pid=$2 rss0 fds0 slab0 got rss1 fds1 slab1 hwm
	sleep 1
	rss0=$(rss_of "$pid") fds0=$(fds_of "$pid") slab0=$(slab)
	rm -f "$LAB_DIR/done"
	lab_bg lan clients python3 "$LAB_DIR/clients.py" "$N" "$LAB_WEB" "$srcs" "$LAB_DIR/done"
	local cpid=$LAB_LAST_PID
	for _ in $(seq 1 600); do [ -s "$LAB_DIR/clients.log" ] && break; sleep 0.1; done
	got=$(head -1 "$LAB_DIR/clients.log")
	sleep 2
	rss1=$(rss_of "$pid") fds1=$(fds_of "$pid") slab1=$(slab) hwm=$(hwm_of "$pid")
	touch "$LAB_DIR/done"
	wait "$cpid" 2>/dev/null
	: >"$LAB_DIR/clients.log"
	row[$name]=$(awk -v n="$got" -v r0="$rss0" -v r1="$rss1" -v h="$hwm" -v f0="$fds0" -v f1="$fds1" -v s0="$slab0" -v s1="$slab1" \
		'BEGIN {printf "%d %.2f %.0f %.2f %.2f %.1f", n, (f1 - f0) / n, r1, (r1 - r0) * 1024 / n, (h - r0) * 1024 / n, (s1 - s0) / n}')
	sleep 2
}

lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
fwd=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
measure pgw "$fwd"
lab_stop_pid "$fwd"
cat >"$LAB_DIR/redsocks.conf" <<-CONF
base { log_debug = off; log_info = off; log = stderr; daemon = off; redirector = iptables; }
redsocks { local_ip = 0.0.0.0; local_port = ${PGW_FORWARDER_PORT:-12345}; ip = $LAB_SOCKS_NOAUTH; port = 1080; type = socks5; }
CONF
lab_bg gw redsocks bash -c "ulimit -n \$(ulimit -Hn); exec redsocks -c $LAB_DIR/redsocks.conf"
rs=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
rs=$(pgrep -P "$rs" redsocks || echo "$rs")
measure redsocks "$rs"
lab_stop_pid "$rs"

printf '%-10s %12s %10s %10s %14s %16s %16s\n' relay connections "fds/conn" "RSS KiB" "RSS B/conn" "peak RSS B/conn" "slab KiB/conn"
for r in pgw redsocks; do
	read -r n f rss per peak sl <<<"${row[$r]}"
	printf '%-10s %12s %10s %10s %14s %16s %16s\n' "$r" "$n" "$f" "$rss" "$per" "$peak" "$sl"
done
echo "N=$N idle connections from $N_CLIENTS client addresses, each proven relayed (the server's hello byte came back),"
echo "through microsocks; RSS B/conn: the relay's RSS growth with them all held, per connection; peak: its high-water"
echo "mark while they opened; slab: the kernel's slab growth per connection, for all six sockets of the lab."
