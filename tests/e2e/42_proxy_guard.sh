#!/usr/bin/env bash
# Scenario: a proxy is reached over the WAN. An admin (an organisation's, say) cannot aim the
# gateway's probes and its clients' connections at the gateway's own services (loopback, its own
# addresses) or at LAN devices (another organisation's) by naming them as a proxy: pgw-api refuses
# such an address, and pgw-healthd refuses a name that resolves there (the proxy is down saying
# why; its clients are blocked). The superadmin's setting proxy_allow_local allows it, for a proxy
# running on the gateway itself (here microsocks on its 127.0.0.1:1081). pgw-healthd resolves
# names off its loop (a resolver that does not answer holds up no probe); pgw-forwarder resolves
# none: it relays a named proxy's clients to the address a good probe reached, and refuses that
# too where no proxy may be.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
GW_WAN=198.51.100.1
$ctl settings set health_interval 2 >/dev/null
$ctl settings set health_down_interval 1 >/dev/null
$ctl settings set health_timeout 2 >/dev/null
$ctl settings set health_fail_threshold 3 >/dev/null # a refusal is down at once all the same
lab_db "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
	INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);"
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
# a SOCKS5 proxy on the gateway's own loopback (as ss-local, tor or ssh -D would be)
lab_bg gw gw-socks microsocks -i 127.0.0.1 -p 1081
lab_wait_port gw 127.0.0.1 1081
# every SYN to it counted, whoever sends it (a table of the test's own, beside the agent's)
lab_exec gw nft -f - <<'NFT'
table inet t42 {
	chain out { type filter hook output priority 0; ip daddr 127.0.0.1 tcp dport 1081 tcp flags syn counter; }
}
NFT
syns() { lab_exec gw nft list chain inet t42 out | grep -o 'packets [0-9]*' | cut -d' ' -f2; }
# the gateway's names (ip netns exec mounts these over /etc/hosts and /etc/resolv.conf; lab_down
# removes them): two that resolve to where no proxy may be, and a resolver that never answers
mkdir -p "/etc/netns/$(lab_ns gw)"
printf '127.0.0.1 localhost\n::1 localhost\n%s gwself.pgw.lab\n192.168.2.13 lanbox.pgw.lab\n10.77.1.5 routed.pgw.lab\n' $GW_WAN >"/etc/netns/$(lab_ns gw)/hosts"
# networks routed behind the LAN (another organisation's clients, say), a LAN device their router
lab_exec gw ip route add 10.77.0.0/16 via 192.168.2.13
lab_exec gw ip -6 route add fd77:1::/48 via fd00:2::13
lab_exec gw ip route add 10.78.0.0/16 via 192.168.2.13 src $GW_WAN # its source the WAN address
printf 'nameserver %s\noptions timeout:10 attempts:1\n' $LAB_WEB >"/etc/netns/$(lab_ns gw)/resolv.conf"
lab_exec wan nft -f - <<NFT
table inet t42 {
	chain in { type filter hook input priority 0; ip daddr $LAB_WEB meta l4proto { tcp, udp } th dport 53 drop; }
}
NFT
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
J='Content-Type: application/json'
fetch() { lab_exec lan curl -s -m 4 --interface "$1" "http://$LAB_WEB/ip"; }
health() { lab_api GET "/api/v1/health" -H "$ADMIN" | cut -d' ' -f2- | jq -r ".items[] | select(.proxy_id == $1) | .$2"; }
post() { lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d "{\"name\":\"$1\",\"type\":\"socks5\",\"host\":\"$2\",\"port\":${3:-1080}}"; }

check_eq "proxy_allow_local is off by default" "$($ctl settings get proxy_allow_local)" "false"
check "the ordinary proxy is up" wait_for 10 bash -c "[ \"\$(sqlite3 $PGW_DB \"SELECT status FROM proxy_health WHERE proxy_id = 1\")\" = up ]"
check_eq "its client goes through it" "$(fetch 192.168.2.10)" "$LAB_SOCKS_NOAUTH"

# addresses: refused when written, saying why and what allows it; nothing stored
check_match "POST a proxy on 127.0.0.1: 400, a loopback address" "$(post lo 127.0.0.1 1081)" \
	"^400 .*'host' 127.0.0.1 is a loopback address.*proxy_allow_local"
check_match "... on the gateway's own WAN address: 400" "$(post own $GW_WAN)" "^400 .*$GW_WAN is one of the gateway's own addresses"
check_match "... on a LAN device (192.168.2.13): 400" "$(post lan 192.168.2.13)" "^400 .*192.168.2.13 is on the LAN"
check_match "... on a LAN device by IPv6 (fd00:2::13): 400" "$(post lan6 fd00:2::13)" "^400 .*fd00:2::13 is on the LAN"
check_match "... on loopback by NAT64 (64:ff9b::7f00:1): 400" "$(post nat64 64:ff9b::7f00:1)" "^400 .*is a loopback address"
check_match "... on ::1: 400" "$(post lo6 ::1)" "^400 .*'host' ::1 is a loopback address"
check_match "a PATCH that moves proxy 1 onto the gateway: 400" \
	"$(lab_api PATCH /api/v1/proxies/1 -H "$ADMIN" -H "$J" -d '{"host":"127.0.0.1"}')" "^400 .*loopback"
check_match "a PUT that moves it onto a LAN device: 400" \
	"$(lab_api PUT /api/v1/proxies/1 -H "$ADMIN" -H "$J" -d '{"name":"socks-open","type":"socks5","host":"192.168.2.13","port":1080}')" "^400 .*on the LAN"
check_match "loopback in a short numeric form (127.1): 400, a dotted quad asked for" "$(post short 127.1)" "^400 .*dotted quad"
check_match "a proxy URI import naming loopback: 400" \
	"$(printf 'socks5://127.0.0.1:1080#uri\n' | lab_api POST /api/v1/proxies/import -H "$ADMIN" -H 'Content-Type: text/plain' --data-binary @-)" '^400 .*loopback'
out=$(printf 'name,type,host,port\nfine,socks5,198.51.100.99,1080\nsneaky,socks5,127.0.0.2,1080\n' |
	lab_api POST /api/v1/proxies/import -H "$ADMIN" -H 'Content-Type: text/csv' --data-binary @-)
check_match "a CSV import with one line on loopback: 400, naming line 3" "$out" '^400 .*"line": *3.*loopback'
check_eq "... nothing was stored by any of them" "$(lab_db 'SELECT group_concat(host) FROM proxies')" "$LAB_SOCKS_NOAUTH"
check_match "a private address of the proxies' own network (10.20.30.40) is fine" "$(post dc 10.20.30.40)" '^201 '
check_match "... but not one of a network routed behind the LAN (10.77.0.0/16 via a LAN router): 400" \
	"$(post routed 10.77.1.5)" "^400 .*10.77.1.5 is reached through the LAN interface \\(a network routed behind the LAN\\)"
check_match "... nor by IPv6 (fd77:1::/48 via fd00:2::13): 400" "$(post routed6 fd77:1::5)" \
	"^400 .*fd77:1::5 is reached through the LAN"
check_match "... nor through a route that gives the WAN address as its source (10.78.0.0/16): 400" \
	"$(post routedsrc 10.78.1.5)" "^400 .*10.78.1.5 is reached through the LAN interface"
# (with forwarding on, the kernel answers the all-zero address of each IPv6 network itself)
check_match "the subnet-router anycast address of the gateway's WAN network (2001:db8:100::): 400, its own" \
	"$(post anycast6 2001:db8:100::)" "^400 .*2001:db8:100:: is one of the gateway's own addresses"

# a name that resolves to loopback: stored (names are resolved where they are used), then
# refused by pgw-healthd (down, saying why); pgw-forwarder relays a named proxy's clients only to
# the address a good probe reached (none: blocked)
out=$(post gwlocal localhost 1081)
check_match "POST a proxy named localhost: 201" "$out" '^201 '
P=$(cut -d' ' -f2- <<<"$out" | jq .id)
# (the API would refuse the mapping while the proxy fails its check: a script did it before)
lab_db "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.11', $P)"
check "pgw-healthd: down, saying the name resolves to loopback and what allows it" \
	wait_for 10 bash -c "sqlite3 $PGW_DB \"SELECT status || ' ' || last_error FROM proxy_health WHERE proxy_id = $P\" | grep -q '^down proxy host 127.0.0.1 is a loopback address: refused (proxy_allow_local allows it)'"
check_eq "... at its first probe, not after health_fail_threshold (3) of them" \
	"$(lab_db "SELECT status FROM health_history WHERE proxy_id = $P ORDER BY checked_at, rowid LIMIT 1")" "down"
check "pgw-forwarder: no address a probe reached, its clients blocked" \
	wait_for 5 grep -q "proxy $P: host 'localhost' has no address pgw-healthd reached yet; its clients wait" "$LAB_DIR/pgw-forwarder.log"
check_fails "client .11 gets nothing" fetch 192.168.2.11
check_eq "nothing was sent to the proxy on the gateway (SYNs to 127.0.0.1:1081)" "$(syns)" 0
for n in "gwself|the gateway's WAN address|$GW_WAN is one of the gateway.s own addresses" \
	"lanbox|a LAN device|192.168.2.13 is on the LAN (lan_cidr)" \
	"routed|a network routed behind the LAN|10.77.1.5 is reached through the LAN interface (a network routed behind the LAN)"; do
	IFS='|' read -r name what why <<<"$n"
	out=$(post $name $name.pgw.lab)
	Q=$(cut -d' ' -f2- <<<"$out" | jq .id)
	check "a name resolving to $what: down, saying so" \
		wait_for 10 bash -c "sqlite3 $PGW_DB \"SELECT status || ' ' || last_error FROM proxy_health WHERE proxy_id = $Q\" | grep -q '^down proxy host $why: refused'"
done

# the superadmin allows it: the proxy on the gateway works, and such addresses can be written
check_match "superadmin: PUT /config proxy_allow_local=true" \
	"$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"proxy_allow_local":"true"}')" '^200 '
check "the proxy on the gateway's loopback is up now" \
	wait_for 10 bash -c "[ \"\$(sqlite3 $PGW_DB \"SELECT status FROM proxy_health WHERE proxy_id = $P\")\" = up ]"
check "client .11 goes through it (leaving from the gateway's WAN address)" \
	wait_for 5 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 4 --interface 192.168.2.11 http://$LAB_WEB/ip)\" = $GW_WAN ]"
check "... the SYN counter sees it (the count above could see traffic)" test "$(syns)" -gt 0
check_match "POST a proxy on 127.0.0.1 is accepted now" "$(post lo 127.0.0.1 1081)" '^201 '
# and off again: refused at once where the daemons use it
check_match "proxy_allow_local=false again" \
	"$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"proxy_allow_local":"false"}')" '^200 '
check "the proxy on loopback is down again, saying why" \
	wait_for 10 bash -c "sqlite3 $PGW_DB \"SELECT status || ' ' || last_error FROM proxy_health WHERE proxy_id = $P\" | grep -q '^down proxy host 127.0.0.1 is a loopback'"
check "... and client .11 gets nothing again" wait_for 5 bash -c "! ip netns exec $(lab_ns lan) curl -s -m 2 --interface 192.168.2.11 http://$LAB_WEB/ip"
check "... pgw-forwarder refusing the address the probe reached before, saying why" \
	grep -q "proxy $P: host 'localhost' (127.0.0.1) is a loopback address: refused" "$LAB_DIR/pgw-forwarder.log"
check_eq "the ordinary proxy's client never noticed" "$(fetch 192.168.2.10)" "$LAB_SOCKS_NOAUTH"

# a name whose resolver never answers (10 s a try): pgw-healthd asks off its loop, and goes on
# probing the others meanwhile (resolving on the loop stalled every probe for those 10 s);
# pgw-forwarder, which resolves nothing, takes the mapping at once and blocks its client until a
# probe has reached the proxy
t0=$(date +%s)
check_match "POST a proxy named slow.pgw.lab (its resolver never answers)" "$(post slow slow.pgw.lab)" '^201 '
S=$(lab_db "SELECT id FROM proxies WHERE name = 'slow'")
lab_db "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.12', $S)"
# (the reload that takes the mapping is the one that says so: a count of reloads taken here could
# be passed by the proxy's own POST's reload landing late, 2026-12-07)
check "pgw-forwarder takes the new mapping at once (within 3 s), its client waiting for the name, which it says" \
	wait_for 3 grep -q "proxy $S: host 'slow.pgw.lab' has no address pgw-healthd reached yet; its clients wait" "$LAB_DIR/pgw-forwarder.log"
check "... and blocks it meanwhile (logged)" grep -q "proxy $S: host 'slow.pgw.lab' .*its clients wait (blocked)" "$LAB_DIR/pgw-forwarder.log"
check_fails "... client .12 gets nothing" fetch 192.168.2.12
left=$((t0 + 10 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left" # 9 whole seconds after t0's
probes=$(lab_db "SELECT count(*) FROM health_history WHERE proxy_id = 1 AND checked_at > $t0")
check "proxy 1 was probed on schedule meanwhile (every 2 s: $probes in 9 s)" test "$probes" -ge 3
check "... and the slow name is down once its resolver gave up: does not resolve" \
	wait_for 15 bash -c "sqlite3 $PGW_DB \"SELECT status || ' ' || last_error FROM proxy_health WHERE proxy_id = $S\" | grep -q '^down proxy host does not resolve'"
# the name comes to resolve (to microsocks) with nothing changed in the DB: both daemons ask a
# name that does not resolve again on their own (every 10 s), not only when a change reloads
echo "$LAB_SOCKS_NOAUTH slow.pgw.lab" >>"/etc/netns/$(lab_ns gw)/hosts" # (in place: the mount sees it)
check "the name resolves now: pgw-healthd finds the proxy up, by itself" \
	wait_for 30 bash -c "[ \"\$(sqlite3 $PGW_DB \"SELECT status FROM proxy_health WHERE proxy_id = $S\")\" = up ]"
check "... and pgw-forwarder relays client .12 through it, by itself" \
	wait_for 30 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 4 --interface 192.168.2.12 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
check_eq "... at the address pgw-healthd's probe reached, as the DB says" \
	"$(lab_db "SELECT probed_host || ' ' || probed_port || ' ' || probed_addr FROM proxy_health WHERE proxy_id = $S")" \
	"slow.pgw.lab 1080 $LAB_SOCKS_NOAUTH"

# A name with several addresses (a provider's round robin): the forwarder goes where the probe
# went, never to an address of its own resolving (health and exit IP unchecked there). pgw-healthd
# held (SIGSTOP, never inside a write: the DB's write lock is free) while the DB says its probe
# reached dante (and its result fresh a minute more): the client leaves through dante, though the
# name resolves to microsocks.
lab_start_dante >/dev/null
hpid=$(awk '$2 == "pgw-healthd" { print $1 }' "$LAB_DIR/pids" | tail -1)
for _ in $(seq 1 20); do
	kill -STOP "$hpid"
	sqlite3 -cmd '.timeout 300' "$PGW_DB" 'BEGIN IMMEDIATE; ROLLBACK' 2>/dev/null && break
	kill -CONT "$hpid"
	sleep 0.1
done
n0=$(lab_fwd_reloads)
lab_db "UPDATE proxy_health SET probed_addr = '$LAB_DANTE', fresh_until = unixepoch() + 60 WHERE proxy_id = $S"
check "pgw-forwarder takes the probed address (a reload)" wait_for 5 lab_fwd_reloaded "$n0"
check "... and client .12 leaves through it (dante), not where the forwarder would resolve the name (microsocks)" \
	wait_for 5 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 4 --interface 192.168.2.12 http://$LAB_WEB/ip)\" = $LAB_DANTE ]"
kill -CONT "$hpid"
check "pgw-healthd's next probe records where it went: the client is back on microsocks" \
	wait_for 15 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 4 --interface 192.168.2.12 http://$LAB_WEB/ip)\" = $LAB_SOCKS_NOAUTH ]"
check_eq "GET /health shows that address for the proxy" "$(health $S address)" "$LAB_SOCKS_NOAUTH"
finish
