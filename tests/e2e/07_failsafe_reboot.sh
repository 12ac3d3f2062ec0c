#!/usr/bin/env bash
# Scenario: the boot failsafe blocks clients with no daemon running; after a "reboot" (empty
# ruleset, failsafe loaded, daemons started) every mapping is effective again within 5 s, with
# no client packet on the WAN interface at any moment; the agent takes over from the failsafe
# atomically, also when the failsafe is loaded again under a running agent.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
db() { sqlite3 "$PGW_DB" "$@"; }
db "INSERT INTO proxies (name, type, host, port) VALUES ('open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
    UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400; -- seeded by hand: no healthd here
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1), ('192.168.2.11', 1);"

n=$(lab_capture_control)
check "control: without pgw, an unmapped client's packets cross the WAN and are seen ($n)" test "$n" -gt 0
lab_capture_start boot || exit 1
check "the failsafe loads with nft -f" lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft"
check "loading it twice is fine (idempotent)" lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft"
lab_client_tries 192.168.2.10 fd00:2::10
lab_client_tries 192.168.2.13 fd00:2::13
rc=0
lab_exec lan curl -s -m 2 --interface 192.168.2.10 http://$LAB_WEB/ip >/dev/null 2>&1 || rc=$?
check "with only the failsafe, a client gets nothing through (curl exit $rc)" test "$rc" -ne 0

effective() { # every mapped client really relayed: it exits at its proxy
	local ip
	for ip in 192.168.2.10 192.168.2.11; do
		[ "$(lab_exec lan curl -s -m 1 --interface $ip http://$LAB_WEB/ip)" = "$LAB_SOCKS_NOAUTH" ] || return 1
	done
}
boot() { # start the daemons; BOOT_MS = ms until every mapping is effective
	local t0=$(date +%s%N)
	for d in agent forwarder healthd; do
		lab_bg gw "pgw-$d-$1" "$PGW_BIN/pgw-$d"
		eval "pid_$d=$LAB_LAST_PID"
	done
	wait_for 10 effective
	BOOT_MS=$((($(date +%s%N) - t0) / 1000000))
}
boot 1
ms=$BOOT_MS
echo "# first start: all mappings effective $ms ms after the daemons started"
check "first start: every mapped client relayed within 5 s ($ms ms)" test "$ms" -lt 5000
check "the failsafe's chains were replaced by the agent's table (its client sets in the forward chain)" \
	bash -c "ip netns exec $(lab_ns gw) nft list chain inet pgw forward | grep -q '@blocked4'"

# the failsafe loaded again under a running agent (a package upgrade, an operator)
lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft"
check "the agent notices and restores its table" wait_for 8 effective

# reboot: daemons die, the kernel forgets everything, the failsafe comes first
for d in agent forwarder healthd; do eval "kill -KILL \$pid_$d; wait \$pid_$d 2>/dev/null"; done
lab_exec gw nft flush ruleset
lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft"
lab_client_tries 192.168.2.10 fd00:2::10
boot 2
ms=$BOOT_MS
echo "# after reboot: all mappings effective $ms ms after the daemons started"
check "after a reboot: every mapped client relayed within 5 s ($ms ms)" test "$ms" -lt 5000
lab_client_tries 192.168.2.10 fd00:2::10
lab_client_tries 192.168.2.13 fd00:2::13
n=$(lab_capture_stop)
[ "$n" -eq 0 ] || { echo "# leaked packets:"; head -n 20 "$LAB_CAP.txt" | sed 's/^/#   /'; }
check_eq "0 client packets on the WAN interface through boot, takeover and reboot" "$n" "0"
finish
