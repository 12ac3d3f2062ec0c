#!/usr/bin/env bash
# Scenario: strict OUTPUT mode. With strict_output on, the gateway itself reaches the WAN only
# as the service user (PGW_SERVICE_USER; here 'nobody') and only to the proxies' address:port
# pairs; root and other destinations are dropped; a client relayed by a forwarder running as
# the service user still works; the LAN is unaffected; turning it off lifts it.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
lab_start_peers || { echo "# peers failed"; exit 1; }
export PGW_SERVICE_USER=nobody
lab_pgw_env
mkdir -p "$PGW_RUN_DIR"
chmod 755 "$LAB_DIR"
chmod 777 "$PGW_RUN_DIR" # the forwarder runs as nobody here
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
as_nobody() { lab_exec gw setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
db "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
    UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 86400; -- seeded by hand: no healthd here
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.11', 1);"
chmod a+rw "$PGW_DB"*
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
check "agent applied" wait_for 5 lab_exec gw nft list set inet pgw active4

check "off: root on the gateway reaches the WAN" lab_exec gw curl -s -m 2 -o /dev/null http://$LAB_WEB/ip
$ctl settings set strict_output true >/dev/null
check "on: the output chain limits the WAN to the proxies (@proxies4)" \
	wait_for 3 bash -c "ip netns exec $(lab_ns gw) nft list chain inet pgw output | grep -q '@proxies4'"
check_fails "on: root cannot reach the WAN" lab_exec gw curl -s -m 2 -o /dev/null http://$LAB_WEB/ip
check_fails "on: the service user cannot reach a non-proxy destination" as_nobody curl -s -m 2 -o /dev/null http://$LAB_WEB/ip
check_eq "on: the service user reaches the proxy" \
	"$(as_nobody curl -s -m 3 --socks5 $LAB_SOCKS_NOAUTH:1080 http://$LAB_WEB/ip)" "$LAB_SOCKS_NOAUTH"
check_fails "on: root cannot use the proxy either" lab_exec gw curl -s -m 2 --socks5 $LAB_SOCKS_NOAUTH:1080 http://$LAB_WEB/ip
# nothing listens on port 1081 there: allowed, the host refuses at once (curl exit 7); dropped
# by the output chain, curl times out (28). The same try with strict mode off ends the scenario.
curl_rc() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; echo $rc; }
check_eq "on: the service user cannot reach another port of the proxy host (dropped: curl times out)" \
	"$(curl_rc as_nobody curl -s -m 2 -o /dev/null http://$LAB_SOCKS_NOAUTH:1081/)" 28
# udp_relay on (the default): the service user's UDP may reach the proxies' hosts (their UDP
# relays' ports are theirs to choose), nothing else
lab_bg wan udp-echo-proxy python3 "$ROOT/tests/e2e/udp_tool.py" echo $LAB_SOCKS_NOAUTH 9999 "$LAB_DIR/udp-proxy.log"
lab_bg wan udp-echo-web python3 "$ROOT/tests/e2e/udp_tool.py" echo $LAB_WEB 9999 "$LAB_DIR/udp-web.log"
# (listening, not just started: python may take longer than any fixed sleep on a loaded machine)
echoes_up() { lab_exec wan ss -Hlun "src $LAB_SOCKS_NOAUTH:9999" | grep -q . && lab_exec wan ss -Hlun "src $LAB_WEB:9999" | grep -q .; }
check "the two UDP echo servers listen" wait_for 10 echoes_up
udp_ok() { as_nobody /usr/bin/python3 "$ROOT/tests/e2e/udp_tool.py" ping 0.0.0.0 "$1" 9999 2 | grep -q '"lost": 0'; }
check "on: the service user's UDP reaches a proxy's host (its UDP relay)" udp_ok $LAB_SOCKS_NOAUTH
check_fails "on: ... and no other host" udp_ok $LAB_WEB
check "   (that host's UDP echo does answer, from its own namespace)" \
	bash -c "ip netns exec $(lab_ns wan) python3 $ROOT/tests/e2e/udp_tool.py ping 0.0.0.0 $LAB_WEB 9999 2 | grep -q '\"lost\": 0'"
check_fails "on: root's UDP does not reach the proxy's host" \
	bash -c "ip netns exec $(lab_ns gw) python3 $ROOT/tests/e2e/udp_tool.py ping 0.0.0.0 $LAB_SOCKS_NOAUTH 9999 2 | grep -q '\"lost\": 0'"

# the forwarder as the service user: clients keep working under strict mode
lab_bg gw pgw-forwarder setpriv --reuid=nobody --regid=nogroup --clear-groups "$PGW_BIN/pgw-forwarder"
check "forwarder (as nobody) listening" wait_for 5 grep -q 'listening on port' "$LAB_DIR/pgw-forwarder.log"
check_eq "on: a client relayed by the forwarder exits at its proxy" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.11 http://$LAB_WEB/ip)" "$LAB_SOCKS_NOAUTH"
# "connection refused" (curl exit 7) proves the packets went and came back; a drop would time out (28)
refused() { [ "$(curl_rc lab_exec gw curl -s -m 2 -o /dev/null "$1")" = 7 ]; }
check "on: the LAN is unaffected (a client's closed port answers at once)" refused http://192.168.2.11:9/
check "on: loopback is unaffected" refused http://127.0.0.1:9/

# a new proxy joins the set
db "INSERT INTO proxies (id, name, type, host, port) VALUES (2, 'http', 'http', '$LAB_HTTP_PROXY', 8888)" && $ctl notify proxies
check "a new proxy's address:port joins proxies4" \
	wait_for 3 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw proxies4 | grep -q '$LAB_HTTP_PROXY . 8888'"
$ctl settings set strict_output false >/dev/null
check "off again: root reaches the WAN" wait_for 3 lab_exec gw curl -s -m 1 -o /dev/null http://$LAB_WEB/ip
check_eq "off again: the proxy host's port 1081 refuses the service user at once (curl exit 7: the control)" \
	"$(curl_rc as_nobody curl -s -m 2 -o /dev/null http://$LAB_SOCKS_NOAUTH:1081/)" 7
finish
