#!/usr/bin/env bash
# Scenario (issue 19, identity): a mapping bound to its client's MAC. Another host on the same
# wire that takes the client's address (a macvlan with its own MAC, IPv4 and IPv6) gets nothing:
# no relay, no API, no DNS, 0 packets on the WAN, while the real client keeps working (its
# replies stay its own: a permanent neighbour entry); the refusal is counted (nft counter, the
# API's mac_refused, /api/v1/devices says mac_mismatch) and logged. DHCP lease names (dnsmasq
# and ISC files) are shown with clients and devices; an unmapped device is listed as such. The
# binding survives an agent restart; unbinding removes the chain, the neighbour entry and the
# record.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES"
$ctl settings set health_interval 2 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'viewer-password-1' | $ctl user add viewer --role viewer --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
VIEWER=$(lab_api_login viewer viewer-password-1)
J='Content-Type: application/json'
body() { cut -d' ' -f2-; }
REAL=$(lab_client_mac)
UPPER=$(tr 'a-f:' 'A-F-' <<<"$REAL") # another spelling of the same MAC

check_match "a mapping with a MAC that is not one: 400" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"mac":"02:00:00:00:00"}')" \
	'^400 .*mac'
check_match "... a group (multicast) MAC: 400" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"mac":"01:00:5e:00:00:01"}')" \
	'^400 '
check_eq "... nothing was stored" "$(lab_db 'SELECT count(*) FROM mappings')" 0
r=$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d "{\"client_ip\":\"192.168.2.10\",\"proxy_id\":2,\"mac\":\"$UPPER\",\"label\":\"laptop\"}")
check_match "the laptop mapped with its MAC (any spelling, stored lower case with colons)" "$r" "^201 .*\"mac\": *\"$REAL\""
M1=$(body <<<"$r" | jq .id)
r=$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d "{\"client_ip\":\"fd00:2::10\",\"proxy_id\":2,\"mac\":\"$REAL\"}")
check_match "its IPv6 address too" "$r" '^201 '
M6=$(body <<<"$r" | jq .id)
lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.11","proxy_id":2}' >/dev/null
relays() { [ "$(lab_exec "${2:-lan}" curl -s -m 3 --interface "$1" "http://$LAB_WEB/ip")" = "$LAB_SOCKS_NOAUTH" ]; }
# (an IPv6 address, not the LAN's: the proxy's, where a leak would show the client's own)
relays6() { local a; a=$(lab_exec "${2:-lan}" curl -s -m 3 --interface "$1" "http://[$LAB_WEB6]/ip"); [[ $a =~ ^[0-9a-f:]+$ && $a != fd00:2:* ]]; }
check "the bound laptop relays (IPv4)" wait_for 10 relays 192.168.2.10
check "... and IPv6" wait_for 10 relays6 fd00:2::10
guard=$(lab_exec gw nft list chain inet pgw mac_guard 2>&1)
check_match "the agent made the mac_guard chain (prerouting, before TPROXY and REDIRECT)" "$guard" 'hook prerouting priority -175'
check_match "... with the laptop's pair in macip4" "$(lab_exec gw nft list set inet pgw macip4)" "$REAL . 192.168.2.10"
check_match "a permanent neighbour entry sends the laptop's replies to its MAC" \
	"$(lab_exec gw ip neigh show 192.168.2.10 dev ens19)" "lladdr $REAL PERMANENT"

# another host takes the laptop's addresses
check "a second host on the wire with the laptop's IPv4 and IPv6 addresses" lab_spoofer_up 192.168.2.10 fd00:2::10
SPOOF=$(lab_spoofer_mac)
echo "# laptop $REAL, the other host $SPOOF"
fwd_lines() { grep -c 'client=' "$LAB_DIR/pgw-forwarder.log"; }
before=$(fwd_lines)
# the redirect to the forwarder counts every packet of the address it sees: the other host's
# must never get that far (mac_guard drops them first, at priority -175)
# (the packet counts of the @active4 and @active6 redirect rules, summed; the laptop has used them)
redirected() { lab_exec gw nft list chain inet pgw prerouting | grep -E '@active(4|6)' | grep -o 'packets [0-9]*' | awk '{n += $2; r++} END {print r == 2 ? n : "no counters"}'; }
red0=$(redirected)
check "the redirect rules count packets (the laptop's are there: $red0)" test "$red0" -gt 0 2>/dev/null
lab_capture_start spoof || exit 1
check_fails "the other host cannot relay (IPv4)" lab_exec spoof curl -s -m 2 "http://$LAB_WEB/ip"
check_fails "... nor IPv6" lab_exec spoof curl -s -m 2 "http://[$LAB_WEB6]/ip"
check_fails "... nor ping the gateway itself" lab_exec spoof ping -n -q -c 2 -W 1 192.168.2.1
check "(the laptop can)" lab_exec lan ping -n -q -c 1 -W 2 -I 192.168.2.10 192.168.2.1
lab_exec spoof ping -n -q -c 2 -W 1 "$LAB_WEB" >/dev/null 2>&1
check_eq "none of its packets reached the redirect rule (dropped before it)" "$(redirected)" "$red0"
check "... while the laptop still relays (IPv4)" relays 192.168.2.10
check "... and IPv6" relays6 fd00:2::10
n=$(lab_capture_stop)
check_eq "0 client packets crossed the WAN interface" "$n" 0
wait_for 3 bash -c "[ \$(grep -c 'client=' $LAB_DIR/pgw-forwarder.log) -ge $((before + 2)) ]" # (logged when each closes)
check_eq "the forwarder saw only the laptop's two connections" "$(($(fwd_lines) - before))" 2
check_match "the gateway's neighbour entry is still the laptop's (the other host's ARP changed nothing)" \
	"$(lab_exec gw ip neigh show 192.168.2.10 dev ens19)" "lladdr $REAL PERMANENT"
dropped() { lab_exec gw nft list chain inet pgw mac_guard | grep 'update @spoof4' | grep -o 'packets [0-9]*' | awk '{print $2}'; }
check "the mac_guard rule counted the other host's packets" test "$(dropped)" -gt 0
check_match "... remembered its pair (spoof4)" "$(lab_exec gw nft list set inet pgw spoof4)" "$SPOOF . 192.168.2.10"
check "the agent logged it (mac_mismatch, both MACs)" wait_for 5 grep -q "mac_mismatch: 192.168.2.10 from $SPOOF refused (the address is bound to $REAL)" "$LAB_DIR/pgw-agent.log"
refused() { lab_api GET "/api/v1/clients/$1" -H "$VIEWER" | body | jq -r "[.mac_refused[] | select(.mac == \"$SPOOF\") | .packets > 0] | .[0]"; }
refused_shown() { [ "$(refused 192.168.2.10)" = true ]; }
check "the API shows the refusals with the client (mac_refused)" wait_for 5 refused_shown
check_eq "... and for its IPv6 address" "$(refused fd00:2::10)" true
check_eq "the client itself is active (the laptop works)" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq -r '.state + " " + .mac')" "active $REAL"
check_match "/metrics counts the refused packets" "$(lab_api GET /metrics -H "$ADMIN")" \
	'pgw_client_mac_refused_packets_total\{client="192.168.2.10"\} [1-9]'
dev=$(lab_api GET /api/v1/devices -H "$VIEWER" | body)
check_eq "devices: the other host is listed with its MAC as mac_mismatch" \
	"$(jq -r ".items[] | select(.mac == \"$SPOOF\" and .ip == \"192.168.2.10\") | .state" <<<"$dev")" mac_mismatch
check_eq "... the laptop as mapped, with its mapping" \
	"$(jq -r ".items[] | select(.mac == \"$REAL\" and .ip == \"192.168.2.10\") | .state + \" \" + (.mapping_id | tostring)" <<<"$dev")" "mapped $M1"

# names from the DHCP server's lease file, and a device nobody mapped
lab_exec lan ping -n -q -c 1 -W 1 -I 192.168.2.12 192.168.2.1 >/dev/null 2>&1 # the gateway learns it
now=$(date +%s)
cat >"$LAB_DIR/dnsmasq.leases" <<LEASES
$((now + 3600)) $REAL 192.168.2.10 laptop-Anna 01:$REAL
$((now + 3600)) $REAL 192.168.2.12 printer<script> *
$((now + 3600)) 12345678 fd00:2::10 laptop-Anna 00:01:00:01
garbage line
LEASES
check_match "setting dhcp_leases_file" "$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d "{\"dhcp_leases_file\":\"$LAB_DIR/dnsmasq.leases\"}")" '^200 '
check_eq "the client's name from dnsmasq's lease file" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq -r .hostname)" laptop-Anna
dev=$(lab_api GET /api/v1/devices -H "$VIEWER" | body)
check_eq "an unmapped device (seen in the neighbour table), its name cleaned of markup" \
	"$(jq -r '.items[] | select(.ip == "192.168.2.12") | .state + " " + .hostname + " " + .seen' <<<"$dev")" \
	"unmapped printerscript neighbour"
cat >"$LAB_DIR/dhcpd.leases" <<'LEASES'
# The format of this file is documented in the dhcpd.leases(5) manual page.
lease 192.168.2.10 {
  starts 3 2026/12/02 10:00:00;
  ends never;
  binding state active;
  hardware ethernet @REAL@;
  client-hostname "old-name";
}
lease 192.168.2.10 {
  starts 3 2026/12/02 11:00:00;
  ends never;
  binding state active;
  hardware ethernet @REAL@;
  uid "\001\002";
  client-hostname "anna-isc";
}
lease 192.168.2.13 {
  ends epoch 1;
  binding state free;
  client-hostname "gone";
}
LEASES
sed -i "s/@REAL@/$REAL/" "$LAB_DIR/dhcpd.leases"
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d "{\"dhcp_leases_file\":\"$LAB_DIR/dhcpd.leases\"}" >/dev/null
check_eq "... and from ISC dhcpd's (the later block wins)" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER" | body | jq -r .hostname)" anna-isc
check_match "a lease file that cannot be read: no names, no error" \
	"$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"dhcp_leases_file":"/nonexistent/leases"}' >/dev/null
	   lab_api GET /api/v1/clients/192.168.2.10 -H "$VIEWER")" '^200 .*"hostname": *null'
check_match "dhcp_leases_file must be an absolute path" \
	"$(lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"dhcp_leases_file":"leases"}')" '^400 '

# the binding survives an agent restart (the table is rebuilt from the DB)
lab_stop_pid "$(awk '$2 == "pgw-agent" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-agent-2 "$PGW_BIN/pgw-agent"
check "agent restarted" wait_for 10 grep -q 'applied: table inet pgw rebuilt' "$LAB_DIR/pgw-agent-2.log"
check_match "... the binding is back in the kernel" "$(lab_exec gw nft list set inet pgw macip4)" "$REAL . 192.168.2.10"
check_fails "... the other host still gets nothing" lab_exec spoof curl -s -m 2 "http://$LAB_WEB/ip"
check "... the laptop still relays" relays 192.168.2.10

# a group MAC written into the DB by hand (the API refuses it; the DB's CHECK lets it by): the
# address is bound to no MAC at all, so its traffic is dropped (fail closed), not left unbound
lab_db "UPDATE mappings SET mac = '01:00:5e:00:00:01' WHERE id = $M1"
check "a group MAC written by hand: the agent says so" \
	wait_for 5 grep -q "mapping of '192.168.2.10' with invalid MAC '01:00:5e:00:00:01': bound to no MAC, its traffic is dropped" "$LAB_DIR/pgw-agent-2.log"
gone() { ! lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip" >/dev/null; }
check "... the laptop gets nothing (its address is not left unbound)" wait_for 5 gone
check_fails "... nor does the other host" lab_exec spoof curl -s -m 2 "http://$LAB_WEB/ip"
lab_db "UPDATE mappings SET mac = '$REAL' WHERE id = $M1"
check "... its MAC back: the laptop relays" wait_for 10 relays 192.168.2.10

# rebinding to the other host's MAC turns the tables; unbinding removes every trace
check_match "PATCH mac to the other host's" \
	"$(lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d "{\"mac\":\"$SPOOF\"}")" "^200 .*\"mac\": *\"$SPOOF\""
check_eq "... the records of the old binding are gone" \
	"$(lab_db "SELECT count(*) FROM mac_spoof WHERE client_ip = '192.168.2.10'")" 0
neigh_is() { lab_exec gw ip neigh show 192.168.2.10 dev ens19 | grep -q "lladdr $1 PERMANENT"; }
check "... the neighbour entry follows" wait_for 5 neigh_is "$SPOOF"
check "... the other host relays now" wait_for 5 relays 192.168.2.10 spoof
check_fails "... the laptop does not" lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip"
check_match "PATCH without mac keeps it" \
	"$(lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"label":"kept"}')" "^200 .*\"mac\": *\"$SPOOF\""
lab_api PATCH "/api/v1/mappings/$M6" -H "$ADMIN" -H "$J" -d '{"mac":""}' >/dev/null
check_match "mac \"\" unbinds" "$(lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"mac":""}')" '^200 .*"mac": *""'
no_chain() { local t; t=$(lab_exec gw nft list table inet pgw) && ! grep -q 'chain mac_guard ' <<<"$t"; }
check "... the mac_guard chain is gone (no binding left)" wait_for 5 no_chain
no_perm() { ! lab_exec gw ip neigh show 192.168.2.10 dev ens19 | grep -q PERMANENT; }
check "... and the permanent neighbour entry" wait_for 5 no_perm
check_eq "the audit trail has the MAC change (before and after)" \
	"$(lab_db "SELECT count(*) FROM audit WHERE action = 'mapping.update' AND json_extract(before_json, '\$.mac') = '$REAL' AND json_extract(after_json, '\$.mac') = '$SPOOF'")" 1
finish
