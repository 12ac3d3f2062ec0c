#!/usr/bin/env bash
# Scenario (issue 17): client UDP through each client's own proxy. pgw-agent TPROXYs the UDP of
# clients whose proxy carries it to pgw-forwarder, which relays it with SOCKS5 UDP ASSOCIATE:
# dante and shadowsocks-libev's ss-local carry it; microsocks and tinyproxy do not, and their
# clients' UDP is blocked (0 packets on the WAN). The echo server sees each client's datagrams
# from its proxy's exit address, and replies reach the client from the address it sent to. 200
# concurrent flows from 10 clients; iperf3 -u; the proxy killed mid-stream; a proxy that stops
# carrying UDP; bad datagrams from a relay dropped and counted; QUIC refused at once.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_dns || { echo "# dnsmasq failed to start"; exit 1; }
lab_start_dante || { echo "# dante failed to start"; exit 1; }
lab_start_ss || { echo "# shadowsocks failed to start"; exit 1; }
lab_start_udp_echo 7777 || { echo "# the UDP echo server failed to start"; exit 1; }
lab_bg wan udp-echo6 python3 "$ROOT/tests/e2e/udp_tool.py" echo $LAB_WEB6 7777 "$LAB_DIR/udp-echo6.log"
lab_bg wan badsocks python3 "$ROOT/tests/e2e/udp_tool.py" badsocks $LAB_BADSOCKS 1080
lab_wait_port wan $LAB_BADSOCKS 1080 || exit 1
tool() { local ns=$1; shift; lab_exec "$ns" python3 "$ROOT/tests/e2e/udp_tool.py" "$@"; }
db() { lab_db "$@"; }
ctl() { "$PGW_BIN/pgwctl" "$@" >/dev/null; }
# map SQL: mappings written straight into the DB, every daemon told at once, and the forwarder's
# reload waited for (each polls on its own clock: the agent once put a client in udp4 a second
# before the forwarder knew it, and its first datagram was dropped as an unknown client's)
map() {
	local n
	n=$(lab_fwd_reloads)
	db "$1"
	ctl notify mappings
	lab_fwd_reloaded "$n" || echo "# (the forwarder did not reload)"
}
gw=$(lab_ns gw)
ctl settings set health_interval 2
ctl settings set health_timeout 2
ctl settings set udp_check "$LAB_DNS:53"
ctl settings set dns_check_name "udpcheck.$LAB_ZONE"
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
    INSERT INTO proxies (id, name, type, host, port) VALUES (4, 'dante', 'socks5', '$LAB_DANTE', 1080),
        (5, 'ss-local', 'socks5', '$LAB_SS', 1080), (6, 'badsocks', 'socks5', '$LAB_BADSOCKS', 1080);
    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 4), ('192.168.2.11', 5),
        ('192.168.2.12', 2), ('192.168.2.13', 3), ('fd00:2::10', 4);"
lab_bg gw pgw-healthd "$PGW_BIN/pgw-healthd"
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
lab_bg gw pgw-forwarder "$PGW_BIN/pgw-forwarder"
check "pgw-healthd: dante, ss-local and badsocks carry UDP; microsocks and tinyproxy not" \
	wait_for 15 bash -c "[ \"\$(sqlite3 -cmd '.timeout 2000' $PGW_DB 'SELECT group_concat(udp) FROM (SELECT udp FROM proxy_health ORDER BY proxy_id)')\" = no,no,no,yes,yes,yes ]"
check "the agent puts fd00:2::10 (dante) in udp6" wait_for 5 bash -c "ip netns exec $gw nft list set inet pgw udp6 | grep -q 'fd00:2::10'"
check "the agent puts exactly the clients of UDP proxies in udp4" \
	wait_for 5 bash -c "s=\$(ip netns exec $gw nft list set inet pgw udp4 | tr -d '\n'); [[ \$s == *192.168.2.10* && \$s == *192.168.2.11* && \$s != *192.168.2.12* && \$s != *192.168.2.13* ]]"
check "the forwarder's UDP relay listens (TPROXY port)" grep -q 'udp: relay listening on port 12346' "$LAB_DIR/pgw-forwarder.log"
check_match "the policy route for TPROXY is there (redirect mode, udp_relay on)" "$(lab_exec gw ip rule show)" "fwmark 0x2470 lookup 2470"

# through dante and ss-local: the echo server sees the proxies' exit addresses
lab_capture_start udp || exit 1
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.10 1 5)
check_match "client .10 (dante): 5 datagrams echoed, each reply from $LAB_ECHO:7777" "$r" '"ok_flows": 1, "sent": 5, "received": 5, "wrong_source": 0'
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.11 1 5)
check_match "client .11 (ss-local): 5 datagrams echoed, each reply from $LAB_ECHO:7777" "$r" '"ok_flows": 1, "sent": 5, "received": 5, "wrong_source": 0'
check_eq "the echo server saw .10's datagrams from dante's address, .11's from ss-server's, nothing else" \
	"$(awk '{print $1}' "$LAB_DIR/udp-echo-7777.log" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
	"$LAB_DANTE=5 $LAB_SS_SERVER=5 "
r=$(tool lan flows $LAB_WEB6 7777 fd00:2::10 1 5)
check_match "IPv6 client fd00:2::10 (dante): 5 datagrams echoed, each reply from [$LAB_WEB6]:7777" "$r" '"ok_flows": 1, "sent": 5, "received": 5, "wrong_source": 0'
check_eq "... the echo server saw them from dante's IPv6 address" "$(awk '{print $1}' "$LAB_DIR/udp-echo6.log" | sort -u)" "$LAB_DANTE6"
# full cone: an answer from a source the client socket never sent to still reaches it, from there
lab_bg wan udp-echo-7778 python3 "$ROOT/tests/e2e/udp_tool.py" echo $LAB_ECHO 7778 "$LAB_DIR/udp-echo-7778.log" 7779
sleep 0.3
r=$(lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('192.168.2.10', 0)); s.settimeout(3)
s.sendto(b'cone', ('$LAB_ECHO', 7778)); d, a = s.recvfrom(100); print(d.decode(), a[0], a[1])" 2>&1)
check_eq "full cone: the answer from $LAB_ECHO:7779 (never sent to) reaches the client, from that address" "$r" "cone $LAB_ECHO 7779"
# clients whose proxy carries no UDP: nothing leaves, nothing comes back
before=$(wc -l <"$LAB_DIR/udp-echo-7777.log")
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.12,192.168.2.13 1 3)
check_match "clients of microsocks and tinyproxy: no UDP at all" "$r" '"received": 0'
check_eq "... the echo server saw none of it" "$(wc -l <"$LAB_DIR/udp-echo-7777.log")" "$before"
quic() { # client: ms until the refusal of a datagram to port 443, or "none"
	lab_exec lan python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$1', 0)); s.settimeout(1)
s.connect(('$LAB_WEB', 443)); t = time.time(); s.send(b'q')
try: s.recv(100); print('answered')
except ConnectionRefusedError: print(int((time.time() - t) * 1000))
except socket.timeout: print('none')"
}
for c in 192.168.2.10 192.168.2.12; do
	ms=$(quic $c)
	check "QUIC (UDP 443) from $c refused within 100 ms (${ms} ms)" test "$ms" -lt 100 2>/dev/null
done
n=$(lab_capture_stop)
check_eq "0 client packets on the WAN interface" "$n" "0"

# 200 concurrent flows from 10 clients, half through dante, half through ss-local
vals=""
for i in $(seq 20 29); do
	lab_exec lan ip addr add 192.168.2.$i/24 dev lan0
	vals="$vals${vals:+,}('192.168.2.$i', $((i % 2 ? 5 : 4)))"
done
map "INSERT INTO mappings (client_ip, proxy_id) VALUES $vals"
check "the ten new clients are in udp4" \
	wait_for 5 bash -c "[ \$(ip netns exec $gw nft -j list set inet pgw udp4 | grep -o '192.168.2.2[0-9]' | sort -u | wc -l) = 10 ]"
srcs=$(seq -s, -f '192.168.2.%g' 20 29)
lab_capture_start flows || exit 1
r=$(tool lan flows $LAB_ECHO 7777 "$srcs" 20 10)
echo "# 200 flows: $r"
check_match "200 concurrent flows from 10 clients, 10 datagrams each: all echoed to the socket that sent them, from the right address" "$r" \
	'"flows": 200, "ok_flows": 200, "sent": 2000, "received": 2000, "wrong_source": 0, "crossed": 0'
check_eq "... 0 client packets on the WAN interface" "$(lab_capture_stop)" "0"
opened() { jq '.udp.sessions_opened' <($PGW_BIN/pgwctl stats); }
sleep 1.2
check "the forwarder counts datagrams per client (.20 sent 200)" \
	bash -c "jq -e '.clients[\"192.168.2.20\"].udp_datagrams_up >= 200 and .clients[\"192.168.2.20\"].udp_datagrams_down >= 200' <($PGW_BIN/pgwctl stats)"
check "... and per proxy (dante and ss-local)" \
	bash -c "jq -e '.udp.proxies[\"4\"].datagrams_up >= 1000 and .udp.proxies[\"5\"].datagrams_up >= 1000' <($PGW_BIN/pgwctl stats)"
check "... with 200+ associations open (one per client socket)" bash -c "jq -e '.udp.sessions >= 200' <($PGW_BIN/pgwctl stats)"

# destinations never relayed: multicast, the gateway itself (LAN and WAN addresses); no association
o0=$(opened)
cd0=$(jq '.clients["192.168.2.21"].udp_dropped // 0' <("$PGW_BIN/pgwctl" stats))
lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('192.168.2.21', 40021))
for d in ('224.0.0.251', '192.168.2.1', '198.51.100.1'): s.sendto(b'local?', (d, 5353))"
sleep 1.1
check_eq "the gateway's own addresses (and multicast): no association opened" "$(opened)" "$o0"
# (the multicast one never reaches the relay: the kernel routes multicast without the policy route
# and, with no group joined and no multicast routing, drops it)
check "... the gateway's addresses dropped as not_routable by the relay" \
	bash -c "jq -e '.udp.dropped.not_routable >= 2' <($PGW_BIN/pgwctl stats)"
check "... and counted in that client's own stats, though no session was made for them" \
	bash -c "jq -e '.clients[\"192.168.2.21\"].udp_dropped >= $cd0 + 2' <($PGW_BIN/pgwctl stats)"

# per-client limits and idle timeouts (new settings reach the relay on reload)
ctl settings set udp_client_flows 3
ctl settings set udp_client_pps 20
ctl settings set udp_flow_timeout 5
ctl settings set udp_session_timeout 5
lab_exec lan ip addr add 192.168.2.40/24 dev lan0
lab_exec lan ip addr add 192.168.2.41/24 dev lan0
map "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.40', 5), ('192.168.2.41', 5)"
check "two more clients in udp4" wait_for 5 bash -c "ip netns exec $gw nft list set inet pgw udp4 | grep -q 192.168.2.41"
o0=$(opened)
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.40 5 2)
check_match "udp_client_flows 3: of 5 sockets of one client, 3 get through" "$r" '"flows": 5, "ok_flows": 3,'
sleep 1.1
check_eq "... and the 2 refused opened no association (3 opened)" "$(($(opened) - o0))" 3
tool lan send 192.168.2.41 $LAB_ECHO 7777 150 # 100 a second for 1.5 s
sleep 1.2
c41=$(jq -c '.clients["192.168.2.41"] | {udp_datagrams_up, udp_dropped}' <($PGW_BIN/pgwctl stats))
echo "# udp_client_pps 20, 150 datagrams in 1.5 s: $c41"
check "udp_client_pps 20: at most 20 + 20/s pass ($c41)" \
	jq -e '.udp_datagrams_up <= 55 and .udp_datagrams_up >= 20 and .udp_dropped >= 95' <<<"$c41"
check "... drops counted by reason" bash -c "jq -e '.udp.dropped.rate_limited >= 95 and .udp.dropped.flow_limit >= 2' <($PGW_BIN/pgwctl stats)"
check "udp_flow_timeout / udp_session_timeout 5 s: .40's associations close when idle" wait_for 15 \
	grep -q 'client=192.168.2.40 port=[0-9]* proxy=5 association closed (idle)' "$LAB_DIR/pgw-forwarder.log"
# a client's associations are bounded by its flows too: with its flows closed (udp_flow_timeout
# 5 s) and its associations kept (udp_session_timeout 300 s), a new socket of the client ends the
# association empty longest (once, nothing bounded them: a client could hold 3 x its flows)
idle41() { grep -c 'client=192.168.2.41 port=[0-9]* proxy=5 association closed (idle)' "$LAB_DIR/pgw-forwarder.log"; }
wait_for 15 bash -c "[ \$(grep -c 'client=192.168.2.41 port=[0-9]* proxy=5 association closed (idle)' $LAB_DIR/pgw-forwarder.log) -ge 1 ]" # its socket of the rate test
n=$(lab_fwd_reloads)
ctl settings set udp_session_timeout 300
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
# (explicit source ports below the ephemeral range, both batches: an ephemeral port of the second
# batch could be one the first batch had, its association found again and nothing ended)
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.41 3 1 20000)
check_match "udp_session_timeout 300 s: 3 sockets of .41 (its 3 flows)" "$r" '"flows": 3, "ok_flows": 3,'
flows41() { [ "$(jq '.clients["192.168.2.41"].udp_flows' <("$PGW_BIN/pgwctl" stats))" = "$1" ]; }
wait_for 3 flows41 3 # (counted: the stats are flushed every 500 ms)
check "... their flows close after 5 s (the associations stay)" wait_for 12 flows41 0
i0=$(idle41)
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.41 3 1 20010)
check_match "3 new sockets of .41 get through" "$r" '"flows": 3, "ok_flows": 3,'
check_eq "... each ending one of its empty associations (closed idle long before 300 s)" "$(($(idle41) - i0))" 3
# (a second IPv6 network on the gateway's LAN side that the clients are not on: they route it to
# the gateway; the reload below reads the LAN interface's networks)
# answers from sources the client never sent to (full cone) cannot take its flows: a host that
# learnt dante's relay addresses for two sockets of .42 sends to each from 20 ports; they get at
# most a quarter of the client's flows a socket (udp_client_flows 8: 2 each, 6 flows in all with
# the sockets' own) and give way to the client's own: 4 new sockets all get through, two of them
# by closing a spray's flow (the spray took all 8 before: every new socket refused)
lab_exec lan ip addr add 192.168.2.42/24 dev lan0
db "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.42', 4)"
n=$(lab_fwd_reloads)
ctl settings set udp_client_flows 8
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
check "(.42 on dante, in udp4)" wait_for 5 bash -c "ip netns exec $gw nft list set inet pgw udp4 | grep -q 192.168.2.42"
lab_bg wan udp-spray python3 "$ROOT/tests/e2e/udp_tool.py" spray $LAB_ECHO 7790 7800 20
check "(the spray listens)" wait_for 5 bash -c "ip netns exec $(lab_ns wan) ss -Hlun 'src $LAB_ECHO:7819' | grep -q ."
r=$(lab_exec lan python3 -c "
import socket
got = []
for k in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('192.168.2.42', 0)); s.settimeout(0.5)
    s.sendto(b'spray', ('$LAB_ECHO', 7790)); ports = set()
    try:
        while True: ports.add(s.recvfrom(100)[1][1])
    except socket.timeout: pass
    got.append(str(len(ports)))
print(' '.join(got))" 2>&1)
echo "# each of .42's two sockets heard from this many of the 20 ports: $r"
check "the spray reached both sockets of .42 (full cone, from several ports each)" \
	bash -c "set -- $r; [ \"\${1:-0}\" -ge 2 ] && [ \"\${2:-0}\" -ge 2 ]"
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.42 4 1)
check_match "... and 4 new sockets of .42 all get through (udp_client_flows 8: the spray's flows give way)" "$r" '"flows": 4, "ok_flows": 4,'
lab_exec gw ip -6 addr add fd00:3::1/64 dev ens19 nodad
n=$(lab_fwd_reloads)
ctl settings set udp_client_flows 512
ctl settings set udp_client_pps 20000
ctl settings set udp_flow_timeout 60
ctl settings set udp_session_timeout 120
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"

# the LAN's IPv6 networks (IPv6 has no lan_cidr: the LAN interface's own) are never relayed,
# as the IPv4 LAN is not: no association, dropped as not_routable
o0=$(opened) nr0=$(jq '.udp.dropped.not_routable' <("$PGW_BIN/pgwctl" stats))
lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('fd00:2::10', 40022))
s.sendto(b'lan?', ('fd00:3::5', 7777))"
lan6_dropped() { [ "$(jq '.udp.dropped.not_routable' <("$PGW_BIN/pgwctl" stats))" -gt "$nr0" ]; }
check "a destination in the LAN interface's other IPv6 network (fd00:3::/64): dropped as not_routable" wait_for 3 lan6_dropped
check_eq "... no association opened" "$(opened)" "$o0"
lab_exec gw ip -6 addr del fd00:3::1/64 dev ens19
# nor the all-zero address of the gateway's WAN network: its subnet-router anycast address, which
# the gateway (forwarding) answers itself
o0=$(opened) nr0=$(jq '.udp.dropped.not_routable' <("$PGW_BIN/pgwctl" stats))
lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('fd00:2::10', 40023))
s.sendto(b'anycast?', ('2001:db8:100::', 7777))"
check "the subnet-router anycast address of the gateway's WAN network (2001:db8:100::): dropped as not_routable" \
	wait_for 3 lan6_dropped
check_eq "... no association opened" "$(opened)" "$o0"
# a flow's address that becomes one of the gateway's own afterwards (an address taken over, as an
# HA pair's is): the flow goes at its next datagram, and the transparent socket bound there with it
send77() {
	lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('192.168.2.21', 40025))
s.sendto(b'$1', ('203.0.113.77', 7777))"
}
bound77() { [ "$(lab_exec gw ss -Huan src 203.0.113.77:7777 | grep -c .)" = "$1" ]; }
send77 first
check "a flow from .21 to 203.0.113.77:7777: a socket on the gateway bound there answers it" wait_for 3 bound77 1
nr0=$(jq '.udp.dropped.not_routable' <("$PGW_BIN/pgwctl" stats))
lab_exec gw ip addr add 203.0.113.77/32 dev lo
# (the relay hears of the address from the kernel, at about the time the datagram comes: again
# until one is dropped; nothing waits for a verdict to age)
again77() { send77 again && sleep 0.2 && lan6_dropped; }
check "... that address now the gateway's own: the flow's next datagram dropped as not_routable" wait_for 3 again77
check "... and its socket closed" bound77 0
lab_exec gw ip addr del 203.0.113.77/32 dev lo

# iperf3 -u through dante (its TCP control connection goes through the TCP relay)
lab_bg wan iperf3 iperf3 -s -B $LAB_ECHO -p 5201
lab_wait_port wan $LAB_ECHO 5201 || exit 1
j=$(lab_exec lan timeout 30 iperf3 -c $LAB_ECHO -p 5201 -B 192.168.2.10 -u -b 10M -l 1200 -t 3 -J 2>&1)
loss=$(jq -r '.end.sum.lost_percent // "none"' <<<"$j" 2>/dev/null)
mbps=$(jq -r '(.end.sum.bits_per_second // 0) / 1e6 | floor' <<<"$j" 2>/dev/null)
echo "# iperf3 -u through dante at 10 Mbit/s: ${mbps:-?} Mbit/s, loss ${loss}%"
check "iperf3 -u at 10 Mbit/s through dante: loss reported (${loss}%) and under 20%" \
	awk -v l="$loss" 'BEGIN { exit !(l != "none" && l + 0 < 20) }'

# bad datagrams from the relay: dropped and counted, the good one delivered
map "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.30', 6)"
lab_exec lan ip addr add 192.168.2.30/24 dev lan0
check "badsocks' client is in udp4" wait_for 5 bash -c "ip netns exec $gw nft list set inet pgw udp4 | grep -q 192.168.2.30"
drops() { jq -c '.udp.dropped | [.bad_header, .fragment, .wrong_source, .not_routable]' <($PGW_BIN/pgwctl stats); }
# (a network routed behind the LAN, another organisation's say, that badsocks names as a source)
lab_exec gw ip route add 10.77.0.0/16 via 192.168.2.13
d0=$(drops)
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.30 1 5)
check_match "through a relay that answers in bad shapes first: exactly the 5 good replies arrive, none other" "$r" \
	'"ok_flows": 1, "sent": 5, "received": 5, "wrong_source": 0, "crossed": 0'
sleep 1.2
d1=$(drops)
check_eq "... dropped: 15 bad headers (short, unknown type, reserved bytes), 5 fragments, 5 from the wrong source, 5 naming a source behind the LAN" \
	"$(jq -nc --argjson a "$d0" --argjson b "$d1" '[$b[0] - $a[0], $b[1] - $a[1], $b[2] - $a[2], $b[3] - $a[3]]')" "[15,5,5,5]"
check "... the forwarder is still alive" kill -0 "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids")"
# the control connection ends (the proxy stays up): that association is closed with it
lab_exec lan python3 -c "
import socket, time
s = socket.socket(); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('192.168.2.30', 40030))
s.sendto(b'hello', ('$LAB_ECHO', 7777)); s.settimeout(2); s.recv(100)
s.sendto(b'close-association', ('$LAB_ECHO', 7777)); time.sleep(1.5)
s.sendto(b'again', ('$LAB_ECHO', 7777)); print(s.recv(100))" >"$LAB_DIR/again.out" 2>&1
check "the proxy ends an association's control connection: the session is closed with it" \
	grep -q 'client=192.168.2.30 port=40030 proxy=6 association closed (the proxy closed its control connection)' "$LAB_DIR/pgw-forwarder.log"
check_eq "... and the socket's next datagram (after the 1 s backoff) gets a new association that works" \
	"$(cat "$LAB_DIR/again.out")" "b'again'"

# the proxy killed in the middle of a stream: the datagrams stop, the client is blocked, no leak
lab_capture_start kill || exit 1
nb=$(grep -c "^$LAB_DANTE " "$LAB_DIR/udp-echo-7777.log")
tool lan send 192.168.2.10 $LAB_ECHO 7777 2000 & # 20 s or more: it outlasts the window below
sender=$!
sleep 1
n0=$(grep -c "^$LAB_DANTE " "$LAB_DIR/udp-echo-7777.log")
lab_stop_dante
t0=$(lab_ms)
# in the named set or not, as the kernel lists it (a failed nft is neither)
in_kset() { local l; l=$(ip netns exec $gw nft list set inet pgw "$1") && grep -q "$2[,} ]" <<<"$l"; }
not_in_kset() { local l; l=$(ip netns exec $gw nft list set inet pgw "$1") && ! grep -q "$2[,} ]" <<<"$l"; }
check "dante killed mid-stream: .10 leaves udp4" wait_for 10 not_in_kset udp4 192.168.2.10
echo "# .10 out of udp4 $(($(lab_ms) - t0)) ms after dante died"
sleep 1
n1=$(wc -l <"$LAB_DIR/udp-echo-7777.log")
sleep 2
n2=$(wc -l <"$LAB_DIR/udp-echo-7777.log")
sending=$(kill -0 $sender 2>/dev/null && echo yes || echo no)
check "... datagrams had flowed before ($((n0 - nb)) in the first second)" test $((n0 - nb)) -gt 20
check_eq "... and stop: none arrive any more, from anywhere (while the client still sends)" "$n2 $sending" "$n1 yes"
wait $sender
check "... the forwarder closed .10's association (its control connection died, or the client was revoked)" \
	grep -Eq 'client=192.168.2.10 port=[0-9]* proxy=4 association closed \((the proxy closed its control connection|revoked)' "$LAB_DIR/pgw-forwarder.log"
check_eq "... 0 client packets on the WAN interface" "$(lab_capture_stop)" "0"

# a proxy that stops carrying UDP while its TCP still works: UDP blocked, TCP goes on
LAB_DANTE_RULES="socks block { from: 0/0 to: 0/0 command: udpassociate }" lab_start_dante || exit 1
check "dante back without UDP ASSOCIATE: up, udp=no" \
	wait_for 15 bash -c "[ \"\$(sqlite3 -cmd '.timeout 2000' $PGW_DB 'SELECT status || udp FROM proxy_health WHERE proxy_id = 4')\" = upno ]"
active_not_udp() { in_kset active4 192.168.2.10 && not_in_kset udp4 192.168.2.10; }
check "... .10 active again but not in udp4" wait_for 5 active_not_udp
lab_capture_start noudp || exit 1
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.10 1 3)
check_match "... its UDP is blocked" "$r" '"received": 0'
check_eq "... its TCP still goes through dante" "$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_DANTE"
check_eq "... 0 client packets on the WAN interface" "$(lab_capture_stop)" "0"

# revoked: a disabled mapping closes its association at once
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.11 1 1)
check_match ".11 has an association open" "$r" '"ok_flows": 1'
db "UPDATE mappings SET enabled = 0 WHERE client_ip = '192.168.2.11'"
check "disabling .11 closes its association at once (revoked)" wait_for 3 \
	grep -q 'client=192.168.2.11 port=[0-9]* proxy=5 association closed (revoked' "$LAB_DIR/pgw-forwarder.log"

lab_api_env
export PGW_METRICS_TOKEN=lab-metrics-token-0123456789
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
lab_wait_port gw 127.0.0.1 8080 || exit 1
metrics=$(lab_exec gw curl -s -H "Authorization: Bearer $PGW_METRICS_TOKEN" http://127.0.0.1:8080/metrics)
check_match "/metrics: UDP datagrams relayed" "$metrics" 'pgw_udp_datagrams_total\{direction="up"\} [1-9]'
check_match "/metrics: drops by reason" "$metrics" 'pgw_udp_dropped_total\{reason="fragment"\} [1-9]'
check_match "/metrics: per proxy" "$metrics" 'pgw_proxy_udp_datagrams_total\{id="5",direction="up"\} [1-9]'
check_match "/metrics: per client" "$metrics" 'pgw_client_udp_datagrams_total\{client="192.168.2.20",direction="up"\} [1-9]'

# the relay not listening: pgw-forwarder without CAP_NET_ADMIN (the default systemd unit and
# compose service). The TPROXY rule takes nothing, the datagrams are refused in forward; a service
# of the gateway on that port sees none of them, the WAN nothing; TCP goes on.
check_match "pgwctl status: the relay listens" "$("$PGW_BIN/pgwctl" status)" "udp: +relay listening, [0-9]+ associations"
lab_stop_pid "$(awk '$2 == "pgw-forwarder" {print $1}' "$LAB_DIR/pids")"
sleep 6
check_match "pgwctl status: the forwarder stopped" "$("$PGW_BIN/pgwctl" status)" "udp: +pgw-forwarder is not running"
lab_bg gw pgw-forwarder-nocap setpriv --bounding-set=-net_admin,-net_raw --inh-caps=-net_admin,-net_raw "$PGW_BIN/pgw-forwarder"
check "a forwarder without CAP_NET_ADMIN says why its relay is off" wait_for 5 \
	grep -q 'udp: relay off: IP_TRANSPARENT on UDP port 12346: Operation not permitted (the UDP relay needs CAP_NET_ADMIN)' "$LAB_DIR/pgw-forwarder-nocap.log"
sleep 1.2
check_match "... and pgwctl status too" "$("$PGW_BIN/pgwctl" status)" "udp: +relay NOT LISTENING: IP_TRANSPARENT"
lab_bg gw gw-listener python3 "$ROOT/tests/e2e/udp_tool.py" echo 0.0.0.0 7777 "$LAB_DIR/gw-7777.log"
sleep 0.5
check ".21 (ss-local, which carries UDP) is still in udp4: its UDP still takes the TPROXY rule" \
	bash -c "ip netns exec $gw nft list set inet pgw udp4 | grep -q '192.168.2.21[,} ]'"
lab_capture_start relayoff || exit 1
r=$(tool lan flows $LAB_ECHO 7777 192.168.2.21 1 3)
check_match "relay off: .21 gets nothing back" "$r" '"received": 0'
check_eq "... a listener on the gateway's own port 7777 saw none of it" "$(wc -l <"$LAB_DIR/gw-7777.log")" "0"
check_eq "... its TCP still goes through its proxy (REDIRECT needs no capability)" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.21 http://$LAB_WEB/ip)" "$LAB_SS_SERVER"
check_eq "... 0 client packets on the WAN interface" "$(lab_capture_stop)" "0"
lab_exec gw python3 "$ROOT/tests/e2e/udp_tool.py" ping 127.0.0.1 127.0.0.1 7777 2 >"$LAB_DIR/gw-ping.out"
check "... (the listener is there: it answers on the gateway itself)" grep -q '"lost": 0' "$LAB_DIR/gw-ping.out"
finish
