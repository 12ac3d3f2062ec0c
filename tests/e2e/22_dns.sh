#!/usr/bin/env bash
# Scenario (issue 16): DNS for every client through that client's own proxy. dnsmasq in the WAN
# namespace serves the lab zone (logging each query's source), unbound serves it over
# DNS-over-TLS with a lab CA. Clients ask the gateway and a hard-coded other address, over UDP
# and TCP, through a SOCKS5 proxy with auth, an open one and an HTTP CONNECT one: right answers;
# the DNS servers saw every query from a proxy's exit address and never from the gateway's;
# large answers truncate over UDP and succeed over TCP; blocked and unmapped clients get REFUSED
# at once, a client whose proxy is down SERVFAIL; malformed queries FORMERR; QUIC is refused at
# once; tcpdump on the WAN interface sees 0 DNS packets (only the proxy connections).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_dns || { echo "# dnsmasq failed to start"; exit 1; }
lab_start_dot || { echo "# unbound failed to start"; exit 1; }
db() { sqlite3 "$PGW_DB" "$@"; }
ctl() { "$PGW_BIN/pgwctl" "$@" >/dev/null; }
GW_WAN=198.51.100.1
OTHER=203.0.113.99 # a resolver address a device might have hard-coded: nothing answers there
# dig from a client address: prints "STATUS ANSWER..." (answers space-separated)
q() { # client server name [type] [dig options...]
	local c=$1 s=$2 n=$3 t=${4:-A} out
	shift 4 2>/dev/null || shift $#
	out=$(lab_exec lan dig -b "$c" "@$s" "$n" "$t" +tries=1 +time=4 +noall +comments +answer "$@" 2>&1)
	printf '%s %s' "$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)" \
		"$(awk '!/^;/ && NF >= 5 {print $NF}' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
}

ctl settings set health_interval 2
ctl settings set health_timeout 2
ctl settings set dns_upstream "$LAB_DNS:53"
ctl settings set dns_check_name "www.$LAB_ZONE"
check_eq "a new install's dns_mode is proxy" "$(db "SELECT value FROM settings WHERE key = 'dns_mode'")" "proxy"
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
    INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.10', 1, 1), ('192.168.2.11', 3, 1),
    ('192.168.2.12', 1, 0), ('fd00:2::10', 2, 1);"
export PGW_DNS_TLS_CA=$LAB_DIR/ca.pem
for d in agent forwarder healthd; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
check "the proxies are up and their clients active" \
	wait_for 10 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -q '192.168.2.10, 192.168.2.11'"
check "the IPv6 client is active" \
	wait_for 10 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active6 | grep -q 'fd00:2::10'"

lab_capture_start dns || exit 1
lab_bg gw tcpdump-wan-dns tcpdump -i eth0 -n -U --immediate-mode -w "$LAB_DIR/wan-dns.pcap" 'port 53 or port 853'
wan_dns_pid=$LAB_LAST_PID
sleep 0.5

# the right answers, over UDP and TCP, to the gateway and to an address nobody serves
check_eq "SOCKS5 (auth) client, UDP, asking the gateway: the lab answer" "$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE)" "NOERROR $LAB_WEB"
check_eq "... over TCP" "$(q 192.168.2.10 192.168.2.1 other.$LAB_ZONE A +tcp)" "NOERROR 203.0.113.11"
check_eq "... asking a hard-coded other address over UDP (taken in the kernel)" "$(q 192.168.2.10 $OTHER www.$LAB_ZONE AAAA)" "NOERROR $LAB_WEB6"
check_eq "... and over TCP" "$(q 192.168.2.10 $OTHER www.$LAB_ZONE TXT +tcp)" "NOERROR "
check_eq "HTTP CONNECT client, UDP" "$(q 192.168.2.11 $OTHER www.$LAB_ZONE)" "NOERROR $LAB_WEB"
check_eq "HTTP CONNECT client, TCP" "$(q 192.168.2.11 192.168.2.1 other.$LAB_ZONE A +tcp)" "NOERROR 203.0.113.11"
check_eq "IPv6 client (open SOCKS5), UDP to the gateway" "$(q fd00:2::10 fd00:2::1 www.$LAB_ZONE)" "NOERROR $LAB_WEB"
check_eq "IPv6 client, TCP to a hard-coded address" "$(q fd00:2::10 2001:db8:203::99 www.$LAB_ZONE A +tcp)" "NOERROR $LAB_WEB"
check_eq "a name that does not exist: NXDOMAIN, passed on" "$(q 192.168.2.10 192.168.2.1 nope.$LAB_ZONE)" "NXDOMAIN "

# large answers: truncated over UDP (TC), whole over TCP
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 big.$LAB_ZONE TXT +notcp +ignore +bufsize=1232 +tries=1 +time=4 2>&1)
check_match "a large answer over UDP is truncated (TC set, no records)" "$out" "flags: qr[a-z ]* tc[a-z ]*; QUERY: 1, ANSWER: 0,"
check_eq "... and whole over TCP (8 records)" "$(q 192.168.2.10 192.168.2.1 big.$LAB_ZONE TXT +tcp | wc -w)" "9"
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 big.$LAB_ZONE TXT +tries=1 +time=4 2>&1)
check_match "dig retries over TCP by itself and gets it" "$out" "ANSWER: 8,"
check_match "EDNS0 passed through (the answer has an OPT record)" "$out" "EDNS: version: 0"

# the cache: a second query for the same name and proxy does not reach the server
n0=$(lab_dns_count www.$LAB_ZONE)
check_eq "a repeated query is answered" "$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE)" "NOERROR $LAB_WEB"
check_eq "... from the cache (the server saw no new query)" "$(lab_dns_count www.$LAB_ZONE)" "$n0"
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 wWw.PgW.lAb +tries=1 +time=4 2>&1)
check_match "... with the client's id and its own case kept in the question" "$out" ";wWw.PgW.lAb\.[[:space:]]+IN[[:space:]]+A"

# refused at once: blocked (mapping disabled) and unmapped clients, nothing forwarded
n0=$(grep -c . "$LAB_DIR/dnsmasq-queries.log")
t0=$(lab_ms)
check_eq "a blocked client (mapping disabled): REFUSED" "$(q 192.168.2.12 192.168.2.1 www.$LAB_ZONE)" "REFUSED "
check_eq "an unmapped client: REFUSED" "$(q 192.168.2.13 $OTHER www.$LAB_ZONE A +tcp)" "REFUSED "
check_eq "an unmapped IPv6 client: REFUSED" "$(q fd00:2::13 fd00:2::1 www.$LAB_ZONE)" "REFUSED "
t=$(($(lab_ms) - t0))
check "... all three at once ($t ms for three, with dig's start-up)" test "$t" -lt 1500
check_eq "... and nothing of theirs reached the DNS server" "$(grep -c . "$LAB_DIR/dnsmasq-queries.log")" "$n0"

# malformed queries: FORMERR with the client's id; a response is never answered
out=$(lab_exec lan python3 - <<-'PY'
	import socket
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.168.2.10", 0)); s.settimeout(3)
	s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05broken", ("192.168.2.1", 53))
	r = s.recv(512)
	print("%02x%02x rcode=%d" % (r[0], r[1], r[3] & 15))
	PY
)
check_eq "a malformed query: FORMERR with its id" "$out" "1234 rcode=1"

# QUIC: UDP to port 443 is refused at once (ICMP port unreachable), so browsers use TCP
out=$(lab_exec lan python3 - <<-PY
	import socket, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.168.2.10", 0)); s.settimeout(3); s.connect(("$LAB_WEB", 443))
	t = time.time(); s.send(b"quic initial")
	try:
	    s.recv(100); print("answered")
	except ConnectionRefusedError:
	    print("refused %d" % ((time.time() - t) < 1))
	except socket.timeout:
	    print("silence")
	PY
)
check_eq "QUIC (UDP 443) from an active client is refused at once" "$out" "refused 1"

# a client whose proxy is down: SERVFAIL
lab_stop_pid "$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")"
check "the open proxy's client is blocked once its proxy is down" \
	wait_for 10 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw blocked6 | grep -q 'fd00:2::10'"
check_eq "a client whose proxy is down: SERVFAIL" "$(q fd00:2::10 fd00:2::1 other.$LAB_ZONE)" "SERVFAIL "

# DNS over TLS through the proxy, the certificate checked against the name
ctl settings set dns_upstream "tls://$LAB_DOT:853#dot.$LAB_ZONE"
sleep 1
check_eq "DNS over TLS through SOCKS5: the answer" "$(q 192.168.2.10 192.168.2.1 tls.$LAB_ZONE)" "NOERROR 203.0.113.12"
check_eq "DNS over TLS through HTTP CONNECT, client over TCP" "$(q 192.168.2.11 $OTHER tls.$LAB_ZONE A +tcp)" "NOERROR 203.0.113.12"
check_eq "the TLS resolver saw the queries from the proxies' exit addresses only" \
	"$(lab_dot_sources | tr '\n' ' ')" "$LAB_SOCKS_AUTH $LAB_HTTP_PROXY "
ctl settings set dns_upstream "tls://$LAB_DOT:853#wrong.$LAB_ZONE"
sleep 1
check_eq "a TLS resolver whose certificate is not for the name: SERVFAIL" "$(q 192.168.2.10 192.168.2.1 tls.$LAB_ZONE)" "SERVFAIL "
check "... and the forwarder says why" grep -q "TLS certificate not accepted" "$LAB_DIR/pgw-forwarder.log"
# failover: the first resolver answers nothing, the second does
ctl settings set dns_upstream "198.51.100.250:53, $LAB_DNS:53"
sleep 1
check_eq "failover to the second resolver when the first cannot be reached" "$(q 192.168.2.10 192.168.2.1 other.$LAB_ZONE TXT)" "NOERROR "

lab_stop_pid "$wan_dns_pid"
n=$(tcpdump -r "$LAB_DIR/wan-dns.pcap" -n 2>/dev/null | wc -l)
[ "$n" -eq 0 ] && tcpdump -r "$LAB_DIR/wan-dns.pcap" -n 2>/dev/null | head -5 | sed 's/^/#   /'
check_eq "tcpdump on the WAN interface: 0 DNS packets (ports 53, 853) outside the proxy connections" "$n" "0"
n=$(lab_capture_stop)
check_eq "... and 0 packets from any client address" "$n" "0"
check_eq "the DNS server saw every query from a proxy's exit address, never the gateway's" \
	"$(lab_dns_sources | tr '\n' ' ')" "$LAB_SOCKS_AUTH $LAB_SOCKS_NOAUTH $LAB_HTTP_PROXY "
check_fails "... not once from the gateway ($GW_WAN)" grep -q "from $GW_WAN\$" "$LAB_DIR/dnsmasq-queries.log"
stats=$(cat "$PGW_RUN_DIR/forwarder.stats.json")
check "the forwarder's stats count queries, cache hits and errors" \
	jq -e '.dns.queries > 10 and .dns.cache_hits >= 1 and .dns.refused >= 3 and .dns.servfail >= 1 and .dns.formerr >= 1' <<<"$stats"
check "... per client" jq -e '.clients["192.168.2.10"].dns_queries > 3' <<<"$stats"
finish
