#!/usr/bin/env bash
# Scenario: forwarder_mode=tproxy. The agent installs the mark + tproxy rule and the policy
# routing (fwmark rule, local route table) through rtnetlink; the forwarder's transparent
# listener relays with the original destination from getsockname(); no client packet reaches
# the WAN; switching back to redirect removes the rule and the route; --flush removes them too.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
ctl=$PGW_BIN/pgwctl
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES
    (1, 'auth', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
    (2, 'http', 'http', '$LAB_HTTP_PROXY', 8888, '$LAB_PROXY_USER', '$LAB_PROXY_PASS');
    UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400; -- seeded by hand: no healthd here
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1), ('192.168.2.12', 2);"
$ctl settings set forwarder_mode tproxy >/dev/null
n=$(lab_capture_control)
check "control: without pgw, an unmapped client's packets cross the WAN and are seen ($n)" test "$n" -gt 0
lab_capture_start tproxy || exit 1
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
check "the agent applies tproxy mode" wait_for 5 lab_exec gw nft list chain inet pgw mangle_prerouting
pre=$(lab_exec gw nft list chain inet pgw prerouting 2>&1)
check_match "... its nat chain redirects DNS only (dns_mode=proxy)" "$pre" "dport 53 counter packets [0-9]+ bytes [0-9]+ redirect to :15353"
check_fails "... and no TCP to the relay's REDIRECT port" grep -q "redirect to :12345" <<<"$pre"
check_match "the fwmark rule exists" "$(lab_exec gw ip rule show)" "fwmark 0x2470 lookup 2470"
check_match "the local route exists in its table" "$(lab_exec gw ip route show table 2470)" "local default dev lo"
check "the forwarder's transparent listener is up" wait_for 5 grep -q 'listening on port 12345 (REDIRECT), 12346 (TPROXY) and 15353 (DNS)' "$LAB_DIR/pgw-forwarder.log"
check_eq "SOCKS5 client relayed through TPROXY exits at its proxy" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_SOCKS_AUTH"
check_eq "HTTP CONNECT client relayed through TPROXY exits at its proxy" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.12 http://$LAB_WEB/ip)" "$LAB_HTTP_PROXY"
check "the forwarder saw the original destination (getsockname)" \
	grep -q 'client=192.168.2.10:[0-9]* dst=203.0.113.10:80 proxy=1 .*close=done' "$LAB_DIR/pgw-forwarder.log"
lab_client_tries 192.168.2.13 fd00:2::13
lab_client_tries 192.168.2.10 fd00:2::10

# another tool removes the policy routing (an `ip rule flush`, a network manager that deletes
# rules it did not make): the agent's verify timer (5 s) puts it back
check_fails "in steady state the agent restores nothing" grep -q 'policy routing was gone' "$LAB_DIR/pgw-agent.log"
lab_exec gw sh -c 'ip rule del fwmark 0x2470 lookup 2470 && ip route flush table 2470' # at once: one verify finds both
check_fails "another tool removed the fwmark rule and the route" \
	bash -c "ip netns exec $(lab_ns gw) ip rule show | grep -q 0x2470"
check "the agent restores the fwmark rule within its verify interval" \
	wait_for 8 bash -c "ip netns exec $(lab_ns gw) ip rule show | grep -q 'fwmark 0x2470 lookup 2470'"
check "... and the local route" \
	wait_for 3 bash -c "ip netns exec $(lab_ns gw) ip route show table 2470 | grep -q 'local default dev lo'"
check "... and says so" wait_for 3 grep -q 'the TPROXY policy routing was gone ([12] of its routes and rules removed by another tool); restored' "$LAB_DIR/pgw-agent.log"
check_eq "... and the client exits at its proxy through TPROXY again" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_SOCKS_AUTH"
sleep 6 # another verify: nothing more to restore
# (two, if a verify came between the two deletions: 1 and 1)
check_eq "... the two of them, once" "$(grep -o 'policy routing was gone ([0-9]*' "$LAB_DIR/pgw-agent.log" | awk -F'(' '{n += $2} END {print n}')" "2"

$ctl settings set forwarder_mode redirect >/dev/null
check "back to redirect: the nat chain redirects TCP to the forwarder again" \
	wait_for 3 bash -c "ip netns exec $(lab_ns gw) nft list chain inet pgw prerouting | grep -q 'redirect to :12345'"
check_match "... the policy route stays while udp_relay is on (UDP still takes TPROXY)" \
	"$(lab_exec gw ip rule show)" "fwmark 0x2470 lookup 2470"
$ctl settings set udp_relay false >/dev/null
check "udp_relay off too: the fwmark rule is gone" \
	wait_for 3 bash -c "! ip netns exec $(lab_ns gw) ip rule show | grep -q 0x2470"
check_eq "... the route table is empty" "$(lab_exec gw ip route show table 2470)" ""
sleep 6 # a verify later: not put back (nothing takes TPROXY now)
check_fails "... and stays gone" bash -c "ip netns exec $(lab_ns gw) ip rule show | grep -q 0x2470"
check_eq "... and the client still exits at its proxy" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_SOCKS_AUTH"
lab_client_tries 192.168.2.13 fd00:2::13
n=$(lab_capture_stop)
check_eq "0 client packets on the WAN interface in either mode" "$n" "0"

$ctl settings set forwarder_mode tproxy >/dev/null
check "tproxy again" wait_for 3 bash -c "ip netns exec $(lab_ns gw) ip rule show | grep -q 0x2470"
lab_stop_pid "$(awk '$2 == "pgw-agent" {print $1}' "$LAB_DIR/pids")" # stopped: its table stays (fail closed)
check "a stopped agent leaves its table in place" lab_exec gw nft list table inet pgw
check "--flush removes table, rule and route" lab_exec gw "$PGW_BIN/pgw-agent" --flush
check_fails "... no table left" lab_exec gw nft list table inet pgw
check_fails "... no rule left" bash -c "ip netns exec $(lab_ns gw) ip rule show | grep -q 0x2470"
check_eq "... no route left in table 2470" "$(lab_exec gw ip route show table 2470 2>/dev/null)" ""

# IPv6 off on the gateway (sysctl disable_ipv6, common on such boxes): the kernel refuses the IPv6
# local route ("IPv6 is disabled on nexthop device"); IPv4 must not wait on it
lab_exec gw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
lab_stop_pid "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids")" # both start with IPv6 off
lab_bg gw pgw-forwarder-v6off "$PGW_BIN/pgw-forwarder"
lab_bg gw pgw-agent-v6off "$PGW_BIN/pgw-agent"
check "IPv6 off: the forwarder listens" wait_for 5 grep -q 'listening on port 12345 (REDIRECT), 12346 (TPROXY)' "$LAB_DIR/pgw-forwarder-v6off.log"
check "IPv6 off: the agent applies tproxy mode" wait_for 5 lab_exec gw nft list chain inet pgw mangle_prerouting
check_match "... with the IPv4 fwmark rule" "$(lab_exec gw ip rule show)" "fwmark 0x2470 lookup 2470"
check "... and says IPv4 only" grep -q 'TPROXY policy routing: IPv4 only (IPv6 is off here: Permission denied)' "$LAB_DIR/pgw-agent-v6off.log"
check_fails "... with no failed reconcile" grep -q 'reconcile failed' "$LAB_DIR/pgw-agent-v6off.log"
check_eq "... and the client exits at its proxy through TPROXY" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_SOCKS_AUTH"
sleep 6 # a verify: it does not warn about IPv6 every 5 s
check_fails "... and its verify does not complain" grep -q 'cannot verify the TPROXY policy routing' "$LAB_DIR/pgw-agent-v6off.log"
finish
