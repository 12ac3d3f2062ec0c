#!/usr/bin/env bash
# Scenario (the spec's leak test): tcpdump on the gateway's WAN interface sees 0 packets from
# any client address, IPv4 or IPv6, while an unmapped client tries TCP, UDP/53, UDP/443 and
# TCP/53; a mapped client whose proxy was killed keeps trying; an active client tries; and the
# agent, forwarder and healthd are each SIGKILLed in turn. A control run first shows that the
# capture does see client packets when nothing blocks them.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
db() { sqlite3 "$PGW_DB" "$@"; }
every_client_tries() {
	lab_client_tries 192.168.2.13 fd00:2::13 # unmapped
	lab_client_tries 192.168.2.11 fd00:2::11 # mapped, proxy killed
	lab_client_tries 192.168.2.10 fd00:2::10 # mapped, proxy up
	lab_client_tries 192.168.2.12            # mapping disabled
}

# Control: without pgw the same tries cross the WAN interface, and the capture sees them.
lab_capture_start control || exit 1
every_client_tries
n=$(lab_capture_stop)
check "control: without pgw, client packets cross the WAN interface ($n seen)" test "$n" -gt 0

"$PGW_BIN/pgwctl" settings set health_interval 2 >/dev/null
"$PGW_BIN/pgwctl" settings set health_timeout 1 >/dev/null
db "INSERT INTO proxies (name, type, host, port, username, password) VALUES
    ('auth', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
    ('open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080, '', '');
    INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.10', 1, 1), ('192.168.2.11', 2, 1),
    ('192.168.2.12', 1, 0);"
for d in agent forwarder healthd; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
check "healthd finds both proxies up and the agent activates their clients" \
	wait_for 5 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -q '192.168.2.10, 192.168.2.11'"

lab_capture_start pgw || exit 1
# the proxy of 192.168.2.11 dies; healthd notices, the agent blocks its client
lab_stop_pid "$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")"
lab_client_tries 192.168.2.11 fd00:2::11 # keeps trying while nobody knows yet
check "the client of the dead proxy is blocked (healthd -> agent)" wait_for 5 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw blocked4 | grep -qw 192.168.2.11"
every_client_tries
rc=0
lab_exec lan curl -s -m 3 --interface 192.168.2.13 http://$LAB_WEB/ip >/dev/null 2>&1 || rc=$?
check_eq "an unmapped client's TCP is refused at once (curl: connection refused)" "$rc" "7"
rc=0
lab_exec lan curl -s -m 3 --interface 192.168.2.11 http://$LAB_WEB/ip >/dev/null 2>&1 || rc=$?
check_eq "a blocked client's TCP is refused at once" "$rc" "7"

for d in agent forwarder healthd; do
	eval "pid=\$pid_$d"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	every_client_tries
	check "after SIGKILL of pgw-$d the table is still in place" lab_exec gw nft list chain inet pgw forward
	lab_bg gw "pgw-$d-again" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
	every_client_tries
done
n=$(lab_capture_stop)
[ "$n" -eq 0 ] || { echo "# leaked packets:"; head -n 20 "$LAB_CAP.txt" | sed 's/^/#   /'; }
check_eq "0 client packets crossed the WAN interface (IPv4 and IPv6, TCP and UDP)" "$n" "0"
drops=$(lab_exec gw nft -j list chain inet pgw forward | jq '[.nftables[].rule.expr // empty | .[] | .counter.packets // empty] | add')
check "... and the forward chain did see them and stop them ($drops packets)" test "$drops" -gt 0
finish
