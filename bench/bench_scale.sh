#!/usr/bin/env bash
# Scale (issue 24): N idle relayed connections held through pgw-forwarder and through redsocks
# (Debian, splice), in one run on the same lab and proxy (microsocks, no auth); then N_BIG through
# pgw alone (its relay threads each with their own descriptor table), through N_SS shadowsocks-
# libev pairs (event-driven: microsocks' thread a connection would not fit this machine's 32,768
# process ids), with a download through the gateway while they are held. Each connection is
# proven relayed end to end (the far side's hello byte reaches the client), then held idle.
# Per connection: the relay's descriptors (in all its tables), its user-space memory (RSS growth,
# and the peak while they opened), and the kernel's (slab growth: every socket of the lab, six a
# connection through microsocks, eight through shadowsocks). This machine caps a descriptor table
# at 20,000 (ulimit -Hn, no CAP_SYS_RESOURCE to raise it): redsocks' one table holds about 3,300
# connections (six descriptors each), pgw's workers 20,000 / 2 each. Bounded: about 5 minutes.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
. "$ROOT/bench/lib.sh"
N=${N:-9000}   # connections held through pgw in all; the first N1 of them also through redsocks
N1=${N1:-1500}
N_CLIENTS=${N_CLIENTS:-30}
N_BIG=${N_BIG:-50000}        # held through pgw with BIG_WORKERS relay threads (0: skip)
BIG_WORKERS=${BIG_WORKERS:-8} # 50,000 x 2 descriptors over 8 tables of at most 20,000
N_SS=${N_SS:-8}               # shadowsocks pairs (each ss-local and ss-server: 2 descriptors a connection)
BIG_CLIENTS=32                # their client addresses, 32 / N_SS of them per pair
bench_lab_up || exit 1
lab_start_nginx >/dev/null || exit 1
truncate -s 1G "$LAB_DIR/www/files/big.bin"
cat "$LAB_DIR/www/files/big.bin" >/dev/null # into the page cache
lab_bg wan microsocks bash -c "ulimit -n \$(ulimit -Hn); exec microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH"
lab_wait_port wan $LAB_SOCKS_NOAUTH 1080 >/dev/null || exit 1
if [ "$N_BIG" -gt 0 ]; then
	for ((k = 1; k <= N_SS; k++)); do
		lab_bg wan "ss-server-$k" bash -c "ulimit -n \$(ulimit -Hn); exec ss-server -s $LAB_SS_SERVER -p $((8388 + k)) -b $LAB_SS_SERVER -k lab-ss-password -m chacha20-ietf-poly1305"
		lab_bg wan "ss-local-$k" bash -c "ulimit -n \$(ulimit -Hn); exec ss-local -s $LAB_SS_SERVER -p $((8388 + k)) -b $LAB_SS -l $((1080 + k)) -k lab-ss-password -m chacha20-ietf-poly1305"
	done
	for ((k = 1; k <= N_SS; k++)); do lab_wait_port wan $LAB_SS $((1080 + k)) >/dev/null || exit 1; done
fi
lab_pgw_env
addr() { echo "192.168.2.$((100 + $1))"; }
big_addr() { echo "192.168.2.$((150 + $1))"; }
{
	echo "BEGIN; INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);"
	for ((k = 1; k <= N_SS; k++)); do
		echo "INSERT INTO proxies (id, name, type, host, port) VALUES ($((1 + k)), 'ss-$k', 'socks5', '$LAB_SS', $((1080 + k)));"
	done
	echo "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400;"
	for ((i = 0; i < N_CLIENTS; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('$(addr $i)', 1);"; done
	for ((i = 0; i < BIG_CLIENTS; i++)); do
		echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('$(big_addr $i)', $((2 + i % N_SS)));"
	done
	echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);" # the download's
	echo "COMMIT;"
} | sqlite3 "$PGW_DB"
"$PGW_BIN/pgwctl" settings set forwarder_max_connections $((N_BIG + 10000)) >/dev/null # 20,000 by default
for ((i = 0; i < N_CLIENTS; i++)); do lab_exec lan ip addr add "$(addr $i)/24" dev lan0; done
for ((i = 0; i < BIG_CLIENTS; i++)); do lab_exec lan ip addr add "$(big_addr $i)/24" dev lan0; done
cat >"$LAB_DIR/holder.py" <<'PY'
import asyncio, resource, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
held = []
async def serve(r, w):
    w.write(b"h"); await w.drain(); held.append(w)
    await r.read()  # until the client goes
    w.close()
async def main():
    s = await asyncio.start_server(serve, host=sys.argv[1], port=7000, backlog=4096, reuse_port=True)
    await s.serve_forever()
asyncio.run(main())
PY
cat >"$LAB_DIR/clients.py" <<'PY'
import asyncio, os, resource, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
n, dst, srcs, done = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
errors = {}
async def one(i, sem, held):
    async with sem:
        for attempt in range(3):  # as a client would: a connection that failed is tried again
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(dst, 7000, local_addr=(srcs[i % len(srcs)], 0)), 10)
                if await asyncio.wait_for(r.readexactly(1), 10) == b"h":
                    held.append(w)
                    return
                w.close()
            except Exception as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
async def main():
    held, sem = [], asyncio.Semaphore(256)
    await asyncio.gather(*(one(i, sem, held) for i in range(n)))
    print(len(held), flush=True)
    print("failed attempts:", errors or "none", file=sys.stderr, flush=True)
    while not os.path.exists(done):
        await asyncio.sleep(0.2)
    for w in held:
        w.close()
asyncio.run(main())
PY
for h in 1 2 3 4 5; do lab_bg wan "holder-$h" python3 "$LAB_DIR/holder.py" "$LAB_WEB"; done # 5 x < 20,000
sleep 1
lab_wait_port wan "$LAB_WEB" 7000 >/dev/null || exit 1
srcs=$(for ((i = 0; i < N_CLIENTS; i++)); do addr $i; done | paste -sd,)
big_srcs=$(for ((i = 0; i < BIG_CLIENTS; i++)); do big_addr $i; done | paste -sd,)
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
for _ in $(seq 1 100); do lab_exec gw nft list set inet pgw active4 2>/dev/null | grep -q "$(addr 0)" && break; sleep 0.1; done

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
fds_of() { lab_fds "$1"; } # all its tables (pgw-forwarder: one per worker thread)
slab() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
declare -A row
# batch NAME N: N more connections from $srcs, held (until $LAB_DIR/done), at most 15,000 a
# client process; waits until they are up and prints how many are
batch() {
	local left=$2 part=0 n got=0
	while [ "$left" -gt 0 ]; do
		n=$((left > 15000 ? 15000 : left)) left=$((left - n)) part=$((part + 1))
		lab_bg lan "$1-$part" python3 "$LAB_DIR/clients.py" "$n" "$LAB_WEB" "$srcs" "$LAB_DIR/done"
	done
	for ((p = 1; p <= part; p++)); do
		for _ in $(seq 1 1800); do [ -s "$LAB_DIR/$1-$p.log" ] && break; sleep 0.1; done
		got=$((got + $(head -1 "$LAB_DIR/$1-$p.log" | tr -dc 0-9)))
	done
	echo "$got"
}
# the download while connections are held (DURING set): Gbit/s of 1 GB from nginx through the relay
declare -A dl
download() { lab_exec lan curl -s -m 60 --interface 192.168.2.10 -o /dev/null -w '%{speed_download}' "http://$LAB_WEB/files/big.bin" |
	awk '{printf "%.2f", $1 * 8 / 1e9}'; }
DURING=
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
		[ -n "$DURING" ] && dl[$name]=$(download)
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
if [ "$N_BIG" -gt 0 ]; then
	lab_bg gw pgw-forwarder-big env PGW_FORWARDER_WORKERS="$BIG_WORKERS" "$PGW_BIN/pgw-forwarder"
	fwd=$LAB_LAST_PID
	lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
	dl_idle=$(download) # nothing held: the same download's speed
	srcs=$big_srcs DURING=1
	measure pgw-big "$fwd" "$N1" "$((N_BIG - N1))"
	tables=$(($(lab_fds "$fwd" tables | wc -w) - 1)) # but the process's own
	lab_stop_pid "$fwd"
fi

printf '%-10s %8s %10s %10s %12s %14s %14s\n' relay held "fds/conn" "RSS KiB" "RSS B/conn" "peak RSS KiB" "slab KiB/conn"
for r in pgw redsocks pgw-big; do
	[ -n "${row[$r]:-}" ] || continue
	read -r n f rss per peak sl <<<"${row[$r]}"
	printf '%-10s %8s %10s %10s %12s %14s %14s\n' "$r" "$n" "$f" "$rss" "$per" "$peak" "$sl"
done
if [ -n "${row[pgw-big]:-}" ]; then
	echo "pgw-big: $BIG_WORKERS relay threads ($tables with a descriptor table of their own), through $N_SS shadowsocks pairs"
	echo "(eight sockets a connection in the lab); a 1 GB download through pgw: ${dl_idle:-?} Gbit/s with none held,"
	echo "${dl[pgw-big]:-?} Gbit/s with them held."
fi
echo "Idle connections from $N_CLIENTS client addresses, each proven relayed (the server's hello byte came back), through"
echo "microsocks. pgw: $N1, then $((N - N1)) more; redsocks: $N1, then $N1 more (it holds 6 descriptors a connection, its"
echo "splice pipes: about 3,300 fit this machine's 20,000). Per connection: what the second batch added (RSS: the relay's"
echo "user-space memory; slab: the kernel's, for all six sockets a connection has in this lab); peak: the relay's high-water RSS."
