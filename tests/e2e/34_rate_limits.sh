#!/usr/bin/env bash
# Scenario (issue 19, rate limits): a mapping's down_kbit and up_kbit, enforced in the kernel by
# pgw-agent with tc through netlink (HTB on the LAN interface for downloads, on an IFB for
# uploads, u32 filters per client). iperf3 through the relay: a client limited to 10 Mbit/s down
# and 2 Mbit/s up measures within 10 % of that, while an unlimited client on the same proxy is
# not held back; an IPv6 client is limited as well. The limits follow edits, survive an agent
# restart and a "reboot" (every qdisc and the IFB gone, the agent started again), and go away
# with the last limit (the LAN's qdiscs and the IFB removed).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES"
$ctl settings set health_interval 2 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
J='Content-Type: application/json'
body() { cut -d' ' -f2-; }
lab_bg wan iperf3 iperf3 -s -B "$LAB_WEB" -p 5201
lab_bg wan iperf3-6 iperf3 -s -B "$LAB_WEB6" -p 5202
iperf_both() { lab_wait_port wan "$LAB_WEB" 5201 && lab_wait_port wan "$LAB_WEB6" 5202; }
check "iperf3 listening in the wan namespace (IPv4 5201, IPv6 5202)" iperf_both

check_match "down_kbit out of range: 400" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"down_kbit":-1}')" '^400 '
r=$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.10","proxy_id":2,"down_kbit":10000,"up_kbit":2000,"label":"limited"}')
check_match "a client limited to 10 Mbit/s down and 2 Mbit/s up" "$r" '^201 .*"down_kbit": *10000, *"up_kbit": *2000'
M1=$(body <<<"$r" | jq .id)
lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"192.168.2.11","proxy_id":2,"label":"free"}' >/dev/null
r=$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d '{"client_ip":"fd00:2::10","proxy_id":2,"down_kbit":5000}')
M6=$(body <<<"$r" | jq .id)
relays() { [ "$(lab_exec lan curl -s -m 3 --interface "$1" "http://$LAB_WEB/ip")" = "$LAB_SOCKS_NOAUTH" ]; }
both_relay() { relays 192.168.2.10 && relays 192.168.2.11; }
check "both relay" wait_for 10 both_relay
check "the agent applied the limits" wait_for 5 grep -q 'rate limits applied: 2 clients limited' "$LAB_DIR/pgw-agent.log"
classes=$(lab_exec gw tc class show dev ens19)
check_match "an HTB class of 10 Mbit/s on the LAN interface" "$classes" 'htb 1:[0-9]+ root .*rate 10Mbit ceil 10Mbit'
check_match "... and of 5 Mbit/s (the IPv6 client)" "$classes" 'rate 5Mbit ceil 5Mbit'
check_match "an HTB class of 2 Mbit/s on the IFB" "$(lab_exec gw tc class show dev pgwifb0)" 'rate 2Mbit ceil 2Mbit'
check_match "the LAN's ingress redirects the client's uploads to the IFB" \
	"$(lab_exec gw tc filter show dev ens19 ingress)" 'Redirect to device pgwifb0'

# mbit CLIENT [iperf3 args]: the client's goodput as iperf3 measures it (received), Mbit/s. The
# server takes one test at a time and may still be closing the last one when the next client
# comes (its control connection's end travels through the relay): "busy", asked again
mbit() {
	local c=$1 port=5201 dst=$LAB_WEB out try
	shift
	case $c in *:*) port=5202 dst=$LAB_WEB6 ;; esac
	for try in 1 2 3; do
		out=$(lab_exec lan timeout 30 iperf3 -c "$dst" -p "$port" -B "$c" -t 6 -O 1 -J "$@" 2>/dev/null)
		grep -q '"error":.*busy' <<<"$out" || break
		echo "# iperf3 server busy (try $try)" >&2
		sleep 1
	done
	jq -r '.end.sum_received.bits_per_second / 1e6 | . * 100 | floor / 100' <<<"$out"
}
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
down=$(mbit 192.168.2.10 -R)
up=$(mbit 192.168.2.10)
free_down=$(mbit 192.168.2.11 -R)
free_up=$(mbit 192.168.2.11)
down6=$(mbit fd00:2::10 -R)
echo "# iperf3 through the relay: limited client ${down} Mbit/s down, ${up} up (limits 10 and 2); unlimited client ${free_down} down, ${free_up} up; IPv6 client ${down6} down (limit 5)"
check "the limited client downloads at 10 Mbit/s +-10 % (${down})" within "$down" 9 11
check "... and uploads at 2 Mbit/s +-10 % (${up})" within "$up" 1.8 2.2
check "the unlimited client on the same proxy is not held back: over 5x the limit both ways (${free_down}, ${free_up})" \
	awk -v d="$free_down" -v u="$free_up" 'BEGIN { exit !(d > 50 && u > 50) }'
check "the IPv6 client downloads at 5 Mbit/s +-10 % (${down6})" within "$down6" 4.5 5.5
pkts() { lab_exec gw tc -s class show dev ens19 | awk '/rate 10Mbit/ {f=1} f && /Sent/ {print $4; exit}'; }
check "the 10 Mbit/s class carried the download" test "$(pkts)" -gt 1000
check_match "/metrics has the client's limits" "$(lab_api GET /metrics -H "$ADMIN")" \
	'pgw_client_rate_limit_kbits\{client="192.168.2.10",direction="up"\} 2000'
check_eq "the client shows its limits" \
	"$(lab_api GET /api/v1/clients/192.168.2.10 -H "$ADMIN" | body | jq -c '.limits | [.down_kbit, .up_kbit]')" '[10000,2000]'

# an edit moves the limit at once
lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"down_kbit":4000}' >/dev/null
rate4() { lab_exec gw tc class show dev ens19 | grep -q 'rate 4Mbit ceil 4Mbit'; }
check "PATCH down_kbit 4000: the class follows" wait_for 5 rate4
check_fails "... and no class of 10 Mbit/s is left" bash -c "ip netns exec $(lab_ns gw) tc class show dev ens19 | grep -q 'rate 10Mbit'"
down=$(mbit 192.168.2.10 -R)
echo "# after the edit: ${down} Mbit/s down (limit 4)"
check "... iperf3 measures 4 Mbit/s +-10 % (${down})" within "$down" 3.6 4.4

# an agent restart rebuilds them from the DB; so does a start after a "reboot" (kernel state gone)
lab_stop_pid "$(awk '$2 == "pgw-agent" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_bg gw pgw-agent-2 "$PGW_BIN/pgw-agent"
check "agent restarted: limits applied again" wait_for 10 grep -q 'rate limits applied: 2 clients limited' "$LAB_DIR/pgw-agent-2.log"
check "... the 4 Mbit/s class is there" rate4
check_eq "... once (not twice)" "$(lab_exec gw tc class show dev ens19 | grep -c 'rate 4Mbit')" 1
lab_stop_pid "$(awk '$2 == "pgw-agent-2" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_exec gw tc qdisc del dev ens19 root
lab_exec gw tc qdisc del dev ens19 ingress
lab_exec gw ip link del pgwifb0
rebooted() { # no class on the LAN interface (tc itself answering), no IFB
	local cls
	cls=$(lab_exec gw tc class show dev ens19) && ! grep -q rate <<<"$cls" &&
		! lab_exec gw ip link show pgwifb0 >/dev/null 2>&1
}
check "(a reboot: no qdisc, no IFB)" rebooted
lab_bg gw pgw-agent-3 "$PGW_BIN/pgw-agent"
check "the agent after the reboot applies them" wait_for 10 grep -q 'rate limits applied: 2 clients limited' "$LAB_DIR/pgw-agent-3.log"
up=$(mbit 192.168.2.10)
echo "# after the reboot: ${up} Mbit/s up (limit 2)"
check "... the upload is limited again (${up})" within "$up" 1.8 2.2
# someone deletes the qdiscs under a running agent: rebuilt within the verify period (5 s)
lab_exec gw tc qdisc del dev ens19 root
check "qdiscs deleted under the running agent: rebuilt" wait_for 12 rate4
check "... and logged" grep -q "rate limits' qdiscs are gone" "$LAB_DIR/pgw-agent-3.log"

# the last limit gone: pgw's qdiscs and the IFB go
lab_api PATCH "/api/v1/mappings/$M1" -H "$ADMIN" -H "$J" -d '{"down_kbit":0,"up_kbit":0}' >/dev/null
lab_api DELETE "/api/v1/mappings/$M6" -H "$ADMIN" >/dev/null
no_ifb() { ! lab_exec gw ip link show pgwifb0 >/dev/null 2>&1; }
check "no limit left: the IFB is removed" wait_for 5 no_ifb
check_fails "... and the LAN's HTB" bash -c "ip netns exec $(lab_ns gw) tc qdisc show dev ens19 | grep -q htb"
free_down=$(mbit 192.168.2.10 -R)
echo "# unlimited again: ${free_down} Mbit/s down"
check "the client is unlimited again (${free_down} Mbit/s)" awk -v d="$free_down" 'BEGIN { exit !(d > 50) }'
finish
