#!/usr/bin/env bash
# pgw-agent: reconcile time for 256, 1,000 and 10,000 mappings (full rebuild and a single
# flip), the event path end to end (commit + notify -> kernel set changed), RSS and idle CPU.
# Runs in a lab namespace; bounded (a few seconds per size).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}
. "$ROOT/tests/lab.sh"
lab_up >/dev/null || exit 1
export PGW_LAN_CIDR=10.0.0.0/8
lab_pgw_env
ctl=$PGW_BIN/pgwctl
db() { sqlite3 -cmd "PRAGMA foreign_keys = ON" "$PGW_DB" "$@"; }
FLIPS=${FLIPS:-20}
FULLS=${FULLS:-5}

pct() { # percentile of numbers on stdin
	sort -n | awk -v p="$1" '{a[NR]=$1} END {if (!NR) {print "-"; exit} i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'
}
gen() { db "SELECT generation FROM agent_state"; }
wait_gen_above() { local g=$1 i; for ((i = 0; i < 500; i++)); do [ "$(gen)" -gt "$g" ] && return 0; sleep 0.01; done; return 1; }

printf '%-9s %12s %12s %12s %12s %12s %10s %10s\n' mappings "full p50 ms" "full max ms" "flip p50 ms" "flip p95 ms" "e2e p95 ms" "RSS KiB" "idle CPU"
for n in 256 1000 10000; do
	db "DELETE FROM mappings; DELETE FROM proxies;"
	db "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'p1', 'socks5', '198.51.100.10', 1080); UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400; -- seeded by hand: no healthd here"
	{
		echo "BEGIN;"
		for ((i = 0; i < n; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id) VALUES ('10.$((i / 65536)).$((i / 256 % 256)).$((i % 256))', 1);"; done
		echo "COMMIT;"
	} | db
	g=$(gen)
	lab_bg gw "agent-$n" "$PGW_BIN/pgw-agent"
	pid=$LAB_LAST_PID
	wait_gen_above "$g" || { echo "agent did not apply $n mappings"; exit 1; }
	fulls=$(db "SELECT duration_us FROM agent_state")
	# more full rebuilds: a rule-changing setting, back and forth
	for ((k = 1; k < FULLS; k++)); do
		g=$(gen)
		$ctl settings set block_action $([ $((k % 2)) = 1 ] && echo drop || echo reject) >/dev/null
		wait_gen_above "$g"
		fulls="$fulls $(db "SELECT duration_us FROM agent_state")"
	done
	# single flips through the event path, timed inside the agent and end to end
	flips="" e2e=""
	first=$(db "SELECT min(id) FROM mappings")
	for ((k = 0; k < FLIPS; k++)); do
		g=$(gen)
		t0=$(date +%s%N)
		db "UPDATE mappings SET enabled = 1 - enabled WHERE id = $((first + k % 7))" && $ctl notify mappings
		wait_gen_above "$g"
		e2e="$e2e $((($(date +%s%N) - t0) / 1000))"
		flips="$flips $(db "SELECT duration_us FROM agent_state")"
	done
	rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
	t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
	sleep 5
	t2=$(awk '{print $14 + $15}' /proc/$pid/stat)
	idle=$(awk -v a="$t1" -v b="$t2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f%%", (b - a) / hz / 5 * 100}')
	ms() { awk '{printf "%.2f", $1 / 1000}'; }
	printf '%-9s %12s %12s %12s %12s %12s %10s %10s\n' "$n" \
		"$(tr ' ' '\n' <<<"$fulls" | grep . | pct 50 | ms)" "$(tr ' ' '\n' <<<"$fulls" | grep . | pct 100 | ms)" \
		"$(tr ' ' '\n' <<<"$flips" | grep . | pct 50 | ms)" "$(tr ' ' '\n' <<<"$flips" | grep . | pct 95 | ms)" \
		"$(tr ' ' '\n' <<<"$e2e" | grep . | pct 95 | ms)" "$rss" "$idle"
	lab_stop_pid "$pid"
	$ctl settings set block_action reject >/dev/null
done
echo "full: whole table rebuilt in one batch (DB read + netlink + acks), measured by the agent."
echo "flip: one mapping toggled, element update only; e2e: commit + 'pgwctl notify' -> agent applied (includes process start-up of sqlite3/pgwctl)."
echo "idle CPU: over 5 s with nothing changing. Targets (spec): 256 mappings supported, idle CPU < 5%, RSS < 128 MB."

# Rate limits (issue 19): the agent's tc apply for 1,000 clients limited both ways (an HTB class
# and a u32 filter on the LAN, an ingress redirect, a class and a filter on the IFB each: 5,000
# netlink requests), timed by the agent; then single edits. Peer: iproute2's `tc -batch` doing
# the same 5,000 commands (after the same qdisc setup), timed from the shell.
N=${RL_CLIENTS:-1000}
db "DELETE FROM mappings;"
{
	echo "BEGIN;"
	for ((i = 0; i < N; i++)); do echo "INSERT INTO mappings (client_ip, proxy_id, down_kbit, up_kbit) VALUES ('10.9.$((i / 256)).$((i % 256))', 1, 10000, 2000);"; done
	echo "COMMIT;"
} | db
lab_bg gw agent-rl "$PGW_BIN/pgw-agent"
pid=$LAB_LAST_PID
applied() { grep -c "rate limits applied: $N clients limited" "$LAB_DIR/agent-rl.log"; }
for ((i = 0; i < 1000; i++)); do [ "$(applied)" -ge 1 ] && break; sleep 0.02; done
ms_of() { grep "rate limits applied: $N clients limited" "$LAB_DIR/agent-rl.log" | sed -n "${1}p" | grep -o '([0-9]* ms)' | tr -dc 0-9; }
first=$(ms_of 1)
edits=""
for ((k = 0; k < 10; k++)); do
	c=$(applied)
	db "UPDATE mappings SET down_kbit = down_kbit + 8 WHERE client_ip = '10.9.0.$k'" && $ctl notify mappings
	for ((i = 0; i < 500; i++)); do [ "$(applied)" -gt "$c" ] && break; sleep 0.01; done
	edits="$edits $(ms_of $((c + 1)))"
done
classes=$(lab_exec gw tc class show dev ens19 | grep -c htb)
lab_stop_pid "$pid"
lab_exec gw tc qdisc del dev ens19 root 2>/dev/null
lab_exec gw tc qdisc del dev ens19 ingress 2>/dev/null
lab_exec gw ip link del pgwifb0 2>/dev/null
# the peer: the same objects with iproute2 (one process, one netlink socket, a request each)
{
	echo "qdisc add dev ens19 root handle 1: htb"
	echo "qdisc add dev ens19 ingress"
	echo "qdisc add dev pgwifb0 root handle 1: htb"
	for ((i = 0; i < N; i++)); do
		s=$((i + 1)) a=10.9.$((i / 256)).$((i % 256))
		echo "class add dev ens19 parent 1: classid 1:$(printf %x $s) htb rate 10000kbit ceil 10000kbit"
		echo "filter add dev ens19 parent 1: prio $s protocol ip u32 match ip dst $a/32 flowid 1:$(printf %x $s)"
		echo "class add dev pgwifb0 parent 1: classid 1:$(printf %x $s) htb rate 2000kbit ceil 2000kbit"
		echo "filter add dev pgwifb0 parent 1: prio $s protocol ip u32 match ip src $a/32 flowid 1:$(printf %x $s)"
		echo "filter add dev ens19 parent ffff: prio $s protocol ip u32 match ip src $a/32 action mirred egress redirect dev pgwifb0"
	done
} >"$LAB_DIR/tc.batch"
lab_exec gw ip link add pgwifb0 type ifb && lab_exec gw ip link set pgwifb0 up
t0=$(date +%s%N)
lab_exec gw tc -batch "$LAB_DIR/tc.batch" >/dev/null 2>&1
peer=$((($(date +%s%N) - t0) / 1000000))
peer_classes=$(lab_exec gw tc class show dev ens19 | grep -c htb)
echo
printf '%-22s %16s %16s %16s %22s\n' "rate-limited clients" "agent first ms" "agent edit p50" "agent edit max" "tc -batch (peer) ms"
printf '%-22s %16s %16s %16s %22s\n' "$N ($classes classes)" "$first" "$(tr ' ' '\n' <<<"$edits" | grep . | pct 50)" \
	"$(tr ' ' '\n' <<<"$edits" | grep . | pct 100)" "$peer ($peer_classes classes)"
echo "agent: pgw-agent's own timing of its tc apply (netlink, each request acked); first = every object from nothing,"
echo "edit = one client's download limit changed (its objects removed and added). Peer: iproute2 'tc -batch' with the"
echo "same objects, from process start to exit."
