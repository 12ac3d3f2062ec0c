#!/usr/bin/env bash
# Scenario (issue 18): exit pinning. A proxy names where it must leave from (expected_exit);
# once it leaves from another address (its VPN dropped, a mislabelled node: NAT in the lab's
# "internet", so connections already open through it live on), its next probe
# sees the other exit and takes it down at once (whatever health_fail_threshold says, 3 here)
# with the reason exit_ip_mismatch: its client
# is blocked within one health interval (figure), a long download through it is cut, an SSE
# event, an audit row and a metric say so, and no client packet crosses the WAN interface.
# Leaving from the expected address again brings it back.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
J='Content-Type: application/json'
C=192.168.2.10
MOVED=198.51.100.21 # the address the proxy leaves from once "its VPN dropped"
head -c 8M /dev/urandom >"$LAB_DIR/www/files/big.bin" # 32 s at 256 KiB/s
ip -n "$(lab_ns wan)" addr add $MOVED/24 dev wan0
$ctl settings set health_interval 1 >/dev/null
$ctl settings set health_timeout 1 >/dev/null
$ctl settings set health_fail_threshold 3 >/dev/null # a mismatch does not wait for it: down at once
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
body() { cut -d' ' -f2-; }

check_match "an expected_exit that is not an address or a CIDR is refused (400)" \
	"$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d "{\"name\":\"x\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080,\"expected_exit\":[\"somewhere\"]}")" \
	"^400 .*expected_exit"
check_match "... so is a CIDR with host bits (400)" \
	"$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d "{\"name\":\"x\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080,\"expected_exit\":[\"198.51.100.11/24\"]}")" \
	"^400 .*expected_exit"
out=$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" \
	-d "{\"name\":\"pinned\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080,\"expected_exit\":[\"$LAB_SOCKS_NOAUTH\",\"2001:db8:100:0::/64\"]}")
check_eq "a proxy pinned to its exit address (201, stored canonical)" \
	"$(body <<<"$out" | jq -c .expected_exit)" "[\"$LAB_SOCKS_NOAUTH/32\",\"2001:db8:100::/64\"]"
P=$(body <<<"$out" | jq .id)
check_match "a client mapped to it: the health gate passes (its exit is the expected one)" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d "{\"client_ip\":\"$C\",\"proxy_id\":$P}")" '^201 '
relays() { [ "$(lab_exec lan curl -s -m 3 --interface $C "http://$LAB_WEB/ip")" = "$1" ]; }
check "the client relays, leaving from $LAB_SOCKS_NOAUTH" wait_for 10 relays $LAB_SOCKS_NOAUTH
active() { lab_exec gw nft list set inet pgw active4 | grep -qw "$C"; }
blocked() { lab_exec gw nft list set inet pgw blocked4 | grep -qw "$C" && ! active; }

lab_exec gw curl -s -N -m 30 -H "$ADMIN" http://127.0.0.1:8080/api/v1/events >"$LAB_DIR/sse.log" &
sse=$!
lab_capture_start pin || exit 1
rm -f "$LAB_DIR/dl.end"
lab_bg lan dl bash -c "curl -s -o /dev/null --interface $C http://$LAB_WEB/slow/big.bin; \
	echo \$? \$((\$(date +%s%N) / 1000000)) > $LAB_DIR/dl.end"
check "a long download through the pinned proxy is under way" \
	wait_for 5 bash -c "ip netns exec $(lab_ns gw) ss -Htn state established '( sport = :12345 )' | grep -q '$C:'"

# the proxy starts leaving from another address (its VPN dropped): new connections from it are
# NATed to $MOVED in the "internet"; the download already under way keeps its own, so only pgw
# can cut it. The rule matches the SYN, not whatever packet conntrack sees first: conntrack starts
# in this namespace only with this table and would pick the download up mid-stream as new
lab_exec wan nft -f - <<NFT
table ip pgwtest_exit {
	chain post { type nat hook postrouting priority 100; ip saddr $LAB_SOCKS_NOAUTH ip daddr $LAB_WEB tcp flags & (syn | ack) == syn snat to $MOVED; }
}
NFT
t0=$(lab_ms)
check "the client is blocked" wait_for 5 blocked
t1=$(lab_ms)
echo "# blocked $((t1 - t0)) ms after the proxy started leaving from $MOVED (health_interval 1 s)"
check "... within one health interval and the probe's timeout ($((t1 - t0)) ms < 2000)" test $((t1 - t0)) -lt 2000
health=$(lab_api GET /api/v1/health -H "$ADMIN" | body | jq -c ".items[] | select(.proxy_id == $P)")
check_eq "the proxy is down with the reason exit_ip_mismatch, the exit it was seen leaving from" \
	"$(jq -r '[.status, (.last_error | split(" ")[0]), .exit_ip] | join(" ")' <<<"$health")" "down exit_ip_mismatch $MOVED"
check "the long download is cut" wait_for 5 test -s "$LAB_DIR/dl.end"
read -r rc _ <"$LAB_DIR/dl.end" 2>/dev/null || rc=none
check "... not completed (curl exit $rc)" test "$rc" != none -a "$rc" != 0
# (waited for: the relay logs the close a moment after curl sees it)
check "... by the forwarder, for the block (close=revoked)" wait_for 3 grep -q "client=$C:[0-9]* .*close=revoked" "$LAB_DIR/pgw-forwarder.log"
# not even directly: curl gets no answer at all (a leak would answer with the client's address)
check "the client cannot reach the internet now (no answer at all)" \
	bash -c "! ip netns exec $(lab_ns lan) curl -s -m 3 --interface $C http://$LAB_WEB/ip"
check "an exit_ip_mismatch event on the live stream, with the address seen" \
	wait_for 5 grep -q "^data: {\"proxy_id\": *$P, *\"exit_ip\": *\"$MOVED\"}" "$LAB_DIR/sse.log"
check_eq "an audit row by pgw-healthd" \
	"$(lab_api GET '/api/v1/audit?action=proxy.exit_ip_mismatch' -H "$ADMIN" | body | jq -r '[.items[] | .user + " " + .object_id + " " + .result] | join(",")')" \
	"pgw-healthd $P failed"
check_match "a metric" "$(lab_exec gw curl -s -H "$ADMIN" http://127.0.0.1:8080/metrics)" \
	"pgw_proxy_exit_ip_mismatch\\{proxy=\"pinned\",id=\"$P\"\\} 1"
n=$(lab_capture_stop)
check_eq "no client packet crossed the WAN interface" "$n" "0"

# leaving from the expected address again: up after the success threshold, the client active
lab_exec wan nft delete table ip pgwtest_exit
check "back at its expected exit, the client is active again" wait_for 15 active
check "... and relays from $LAB_SOCKS_NOAUTH" wait_for 5 relays $LAB_SOCKS_NOAUTH
check_match "... the metric says 0" "$(lab_exec gw curl -s -H "$ADMIN" http://127.0.0.1:8080/metrics)" \
	"pgw_proxy_exit_ip_mismatch\\{proxy=\"pinned\",id=\"$P\"\\} 0"
kill $sse 2>/dev/null
finish
