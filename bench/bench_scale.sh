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
. "$ROOT/bench/lib.sh"
N=${N:-9000}   # connections held through pgw in all; the first N1 of them also through redsocks
N1=${N1:-1500}
N_CLIENTS=${N_CLIENTS:-30}
bench_lab_up || exit 1
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
# batch NAME N: N more connections, held (until $LAB_DIR/done); waits until they are up
batch() {
	lab_bg lan "$1" python3 "$LAB_DIR/clients.py" "$2" "$LAB_WEB" "$srcs" "$LAB_DIR/done"
	for _ in $(seq 1 900); do [ -s "$LAB_DIR/$1.log" ] && break; sleep 0.1; done
	head -1 "$LAB_DIR/$1.log"
}
# measure NAME PID N1 [N2]: N1 connections held, then N2 more; per connection: what the N2 more
# added (the marginal cost, without the relay's fixed start-up memory), or the N1 when alone
measure() {
	local name=$1 pid=$2 n1=$3 n2=${4:-0} rss0 fds0 slab0 got1 got2=0 rss1 fds1 slab1 rss2 fds2 slab2 hwm
	rm -f "$LAB_DIR/done"
	sleep 1
	rss0=$(rss_of "$pid") fds0=$(fds_of "$pid") slab0=$(slab)
	got1=$(batch "clients-$name-1" "$n1")
	sleep 2
	rss1=$(rss_of "$pid") fds1=$(fds_of "$pid") slab1=$(slab)
	if [ "$n2" -gt 0 ]; then
		got2=$(batch "clients-$name-2" "$n2")
		sleep 2
		rss2=$(rss_of "$pid") fds2=$(fds_of "$pid") slab2=$(slab)
	else
		rss2=$rss1 fds2=$fds1 slab2=$slab1 got2=$got1 rss1=$rss0 fds1=$fds0 slab1=$slab0
	fi
	hwm=$(hwm_of "$pid")
	touch "$LAB_DIR/done"
	sleep 1
	row[$name]=$(awk -v held="$((got1 + (n2 > 0 ? got2 : 0)))" -v n="$got2" -v r1="$rss1" -v r2="$rss2" -v h="$hwm" \
		-v f1="$fds1" -v f2="$fds2" -v s1="$slab1" -v s2="$slab2" \
		'BEGIN {if (n < 1) n = 1; printf "%d %.2f %.0f %.0f %.0f %.1f", held, (f2 - f1) / n, r2, (r2 - r1) * 1024 / n, h, (s2 - s1) / n}')
	sleep 1
}

lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
fwd=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
measure pgw "$fwd" "$N1" "$((N - N1))"
lab_stop_pid "$fwd"
bench_redsocks "$LAB_SOCKS_NOAUTH" 'redsocks_conn_max = 3300;'
measure redsocks "$RS" "$N1" "$N1"
lab_stop_pid "$RS"

printf '%-10s %8s %10s %10s %12s %14s %14s\n' relay held "fds/conn" "RSS KiB" "RSS B/conn" "peak RSS KiB" "slab KiB/conn"
for r in pgw redsocks; do
	read -r n f rss per peak sl <<<"${row[$r]}"
	printf '%-10s %8s %10s %10s %12s %14s %14s\n' "$r" "$n" "$f" "$rss" "$per" "$peak" "$sl"
done
echo "Idle connections from $N_CLIENTS client addresses, each proven relayed (the server's hello byte came back), through"
echo "microsocks. pgw: $N1, then $((N - N1)) more; redsocks: $N1, then $N1 more (it holds 6 descriptors a connection, its"
echo "splice pipes: about 3,300 fit this machine's 20,000). Per connection: what the second batch added (RSS: the relay's"
echo "user-space memory; slab: the kernel's, for all six sockets a connection has in this lab); peak: the relay's high-water RSS."
