#!/usr/bin/env bash
# Scenario: pgw-agent keeps table inet pgw equal to the DB: 256 mappings, element-only
# updates through the event path (< 1 s) and the polling fallback (< 5 s), full rebuilds on
# setting changes, a table removed by someone else restored, fail closed on SIGKILL, --flush.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
export PGW_LAN_CIDR=192.168.0.0/16
lab_pgw_env
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
nftj() { lab_exec gw nft -j list set inet pgw "$1" | jq -r '[.nftables[].set.elem // empty | .[]] | sort | .[]'; }

# 4 proxies (3 up, 1 down) and 256 mappings over them; every 16th mapping disabled.
db "INSERT INTO proxies (name, type, host, port) VALUES ('p1','socks5','198.51.100.10',1080),
    ('p2','socks5','198.51.100.11',1080), ('p3','http','198.51.100.12',8888), ('p4','socks5','198.51.100.99',1080);
    UPDATE proxy_health SET status = CASE proxy_id WHEN 4 THEN 'down' ELSE 'up' END, fresh_until = unixepoch() + 86400;"
{
	echo "BEGIN;"
	for i in $(seq 0 255); do
		echo "INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.$((3 + i / 200)).$((10 + i % 200))', $((1 + i % 4)), $((i % 16 == 5 ? 0 : 1)));"
	done
	echo "COMMIT;"
} | db
want_active() { db "SELECT m.client_ip FROM mappings m JOIN proxies p ON p.id = m.proxy_id JOIN proxy_health h ON h.proxy_id = p.id
	WHERE m.enabled = 1 AND p.enabled = 1 AND h.status = 'up'" | sort; }
want_blocked() { db "SELECT client_ip FROM mappings" | sort | comm -23 - <(want_active); }

PGW_LOG_LEVEL=debug lab_bg gw pgw-agent "$PGW_BIN/pgw-agent" # (debug: the verify says it ran)
agent=$LAB_LAST_PID
started=$(date +%s)
check "the agent applies the table" wait_for 5 lab_exec gw nft list table inet pgw
check_eq "mappings in the DB" "$(db 'SELECT count(*) FROM mappings')" "256"
check_eq "active4 in the kernel equals the DB's active clients ($(want_active | wc -l))" "$(nftj active4)" "$(want_active)"
check_eq "blocked4 in the kernel equals the DB's blocked clients ($(want_blocked | wc -l))" "$(nftj blocked4)" "$(want_blocked)"
check_match "pgwctl status shows what was applied" "$($ctl status)" "generation 1, .*full.* $(want_active | wc -l) active, $(want_blocked | wc -l) blocked"
rules=$(lab_exec gw nft -j list table inet pgw | jq -c '[.nftables[].rule // empty | {chain, expr}]')

# time from a committed change to the kernel: every 10 ms, look at the set
ms_until_gone() { # ip [timeout-ms]
	local start=$(date +%s%N) now
	while :; do
		lab_exec gw nft list set inet pgw active4 | grep -qw "$1" || break
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -lt "${2:-6000}" ] || { echo 99999; return; }
		sleep 0.01
	done
	echo $((($(date +%s%N) - start) / 1000000))
}

# event path: commit, then announce (what pgw-api does)
ip=192.168.3.10
db "UPDATE mappings SET enabled = 0 WHERE client_ip = '$ip'" && $ctl notify mappings
ms=$(ms_until_gone $ip)
echo "# disabled mapping blocked through the event path in $ms ms"
check "a disabled mapping is blocked in under 1 s through the event path ($ms ms)" test "$ms" -lt 1000
check "... and is now in blocked4" bash -c "lab_exec() { ip netns exec $(lab_ns gw) \"\$@\"; }; lab_exec nft list set inet pgw blocked4 | grep -qw $ip"
check "... by an element update, not a rebuild" test "$(db "SELECT kind FROM agent_state")" = elements

# polling fallback: commit, no datagram (a lost notification)
ip=192.168.3.11
db "UPDATE mappings SET enabled = 0 WHERE client_ip = '$ip'"
ms=$(ms_until_gone $ip)
echo "# disabled mapping blocked through the polling fallback in $ms ms"
check "a disabled mapping is blocked in under 5 s without any notification ($ms ms)" test "$ms" -lt 5000

# a proxy going down moves all its clients at once
db "UPDATE proxy_health SET status = 'down' WHERE proxy_id = 1" && $ctl notify health
check "a proxy down blocks all of its clients" wait_for 2 bash -c "[ \"\$(ip netns exec $(lab_ns gw) nft -j list set inet pgw active4 | jq '[.nftables[].set.elem // empty | .[]] | length')\" = $(want_active | wc -l) ]"
check_eq "active4 still equals the DB" "$(nftj active4)" "$(want_active)"
check_eq "rules untouched by element updates" "$(lab_exec gw nft -j list table inet pgw | jq -c '[.nftables[].rule // empty | {chain, expr}]')" "$rules"

# a setting that changes rules: full rebuild
$ctl settings set block_action drop >/dev/null
check "block_action=drop rebuilds the table with drop verdicts" \
	wait_for 3 bash -c "ip netns exec $(lab_ns gw) nft list chain inet pgw forward | grep -q 'ip saddr @blocked4 counter packets [0-9]* bytes [0-9]* drop'"
check_eq "... and keeps the sets" "$(nftj active4)" "$(want_active)"

# the verify (every 5 s) asks the kernel for the table, its probe set and its forward chain:
# it finds what the agent built (a request the kernel does not answer as meant would rebuild
# every 5 s, or complain)
left=$((started + 6 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
check "the verify ran and found the table as built: awake, probe set there, forward chain dropping" \
	grep -q 'verify: table inet pgw as built' "$LAB_DIR/pgw-agent.log"
check_fails "... and never found it otherwise (no rebuild, no complaint)" \
	grep -q 'missing or not ours\|cannot verify table' "$LAB_DIR/pgw-agent.log"

# someone deletes our table: restored
lab_exec gw nft delete table inet pgw
check "a deleted table is restored within the verify period" wait_for 8 lab_exec gw nft list set inet pgw active4
check_eq "... with the right clients" "$(nftj active4)" "$(want_active)"

# fail closed: SIGKILL leaves the rules in place; a restart takes over without a gap
kill -KILL $agent
wait $agent 2>/dev/null
check "after SIGKILL the table stays" lab_exec gw nft list chain inet pgw forward
gen=$(db "SELECT generation FROM agent_state")
lab_bg gw pgw-agent-2 "$PGW_BIN/pgw-agent"
agent=$LAB_LAST_PID
check "a restarted agent applies again" wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB 'SELECT generation FROM agent_state') -gt $gen ]"
check_eq "... the same clients" "$(nftj active4)" "$(want_active)"
kill -TERM $agent
wait $agent
check_eq "SIGTERM: exit 0" "$?" "0"
check "SIGTERM leaves the table in place (fail closed)" lab_exec gw nft list set inet pgw blocked4
check "pgw-agent --flush removes the table" lab_exec gw "$PGW_BIN/pgw-agent" --flush
check_fails "... it is gone" lab_exec gw nft list table inet pgw
check "--flush with no table is fine" lab_exec gw "$PGW_BIN/pgw-agent" --flush
finish
