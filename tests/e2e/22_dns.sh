#!/usr/bin/env bash
# Scenario (issue 16): DNS for every client through that client's own proxy. dnsmasq in the WAN
# namespace serves the lab zone (logging each query's source), unbound serves it over
# DNS-over-TLS with a lab CA. Clients ask the gateway and a hard-coded other address, over UDP
# and TCP, through a SOCKS5 proxy with auth, an open one and an HTTP CONNECT one: right answers;
# the DNS servers saw every query from a proxy's exit address and never from the gateway's;
# large answers truncate over UDP and succeed over TCP; blocked and unmapped clients get REFUSED
# at once, a client whose proxy is down SERVFAIL; malformed queries FORMERR; QUIC is refused at
# once; a query in flight when its client is disabled is not asked again; a connection that
# answers nothing is replaced; tcpdump on the WAN interface sees 0 DNS packets (only the proxy
# connections); mappings the forwarder cannot read for 5 s: every client blocked (SERVFAIL), then
# relayed again.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_dns || { echo "# dnsmasq failed to start"; exit 1; }
lab_start_dot || { echo "# unbound failed to start"; exit 1; }
# dante that carries TCP but not DNS: a proxy that cannot carry DNS
LAB_DANTE_RULES="socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = 53 }
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = 853 }" lab_start_dante || { echo "# dante failed to start"; exit 1; }
# SIGSTOP pgw-healthd outside a write of its own: paused inside one it holds the DB's write lock,
# and every other writer waits, then fails (the test's own UPDATE once did: the client meant to be
# disabled was not, and its query ended SERVFAIL instead of REFUSED)
pause_healthd() {
	local i
	for ((i = 0; i < 20; i++)); do
		kill -STOP "$1"
		sqlite3 -cmd '.timeout 200' "$PGW_DB" 'BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null && return 0
		kill -CONT "$1"
		sleep 0.1
	done
	echo "# pgw-healthd could not be paused outside a write"
}
ip -n "$(lab_ns lan)" addr add 192.168.2.14/24 dev lan0 # the client of the proxy without DNS
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
ctl settings set dns_check_name "check.$LAB_ZONE" # NXDOMAIN: enough to show the path works
check_eq "a new install's dns_mode is proxy" "$(lab_db "SELECT value FROM settings WHERE key = 'dns_mode'")" "proxy"
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
    INSERT INTO proxies (id, name, type, host, port) VALUES (4, 'dante-no-dns', 'socks5', '$LAB_DANTE', 1080);
    INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.10', 1, 1), ('192.168.2.11', 3, 1),
    ('192.168.2.12', 1, 0), ('fd00:2::10', 2, 1), ('192.168.2.14', 4, 1);"
export PGW_DNS_TLS_CA=$LAB_DIR/ca.pem
lab_api_env
export PGW_METRICS_TOKEN=lab-metrics-token-0123456789
for d in agent forwarder healthd api; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
active4_has() { local set; set=$(lab_exec gw nft list set inet pgw active4) && for a; do grep -qw "$a" <<<"$set" || return 1; done; }
check "the proxies are up and their clients active" wait_for 10 active4_has 192.168.2.10 192.168.2.11 192.168.2.14
check "the IPv6 client is active" \
	wait_for 10 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active6 | grep -q 'fd00:2::10'"
check "pgw-healthd finds that the proxies carry DNS" \
	wait_for 10 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT group_concat(dns_status) FROM (SELECT dns_status FROM proxy_health ORDER BY proxy_id)\") = up,up,up,down ]"
check_match "... but dante, which blocks port 53, does not (and says why)" \
	"$(lab_db "SELECT status || ' ' || dns_error FROM proxy_health WHERE proxy_id = 4")" "^up $LAB_DNS:53: through the proxy: "

lab_capture_start dns || exit 1
lab_bg gw tcpdump-wan-dns tcpdump -i eth0 -n -U --immediate-mode -w "$LAB_DIR/wan-dns.pcap" 'port 53 or port 853'
wan_dns_pid=$LAB_LAST_PID
wait_for 5 grep -q 'listening on' "$LAB_DIR/tcpdump-wan-dns.log" || { echo "Bail out! tcpdump (WAN, DNS) did not start"; exit 1; }

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

t0=$(lab_ms)
check_eq "a client of a proxy without DNS: SERVFAIL" "$(q 192.168.2.14 192.168.2.1 www.$LAB_ZONE)" "SERVFAIL "
t=$(($(lab_ms) - t0))
check "... at once ($t ms with dig's start-up)" test "$t" -lt 1000
check_eq "... while its TCP goes through the proxy" "$(lab_exec lan curl -s -m 5 --interface 192.168.2.14 http://$LAB_WEB/ip)" "$LAB_DANTE"

# large answers: truncated over UDP (TC), whole over TCP
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 big.$LAB_ZONE TXT +notcp +ignore +bufsize=1232 +tries=1 +time=4 2>&1)
check_match "a large answer over UDP is truncated (TC set, no records)" "$out" "flags: qr[a-z ]* tc[a-z ]*; QUERY: 1, ANSWER: 0,"
check_eq "... and whole over TCP (8 records)" "$(q 192.168.2.10 192.168.2.1 big.$LAB_ZONE TXT +tcp | wc -w)" "9"
check_eq "an answer of over 8 KB (40 records) whole over TCP, through the proxy" \
	"$(q 192.168.2.10 192.168.2.1 huge.$LAB_ZONE TXT +tcp | wc -w)" "41"
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 big.$LAB_ZONE TXT +tries=1 +time=4 2>&1)
check_match "dig retries over TCP by itself and gets it" "$out" "ANSWER: 8,"
check_match "EDNS0 passed through (the answer has an OPT record)" "$out" "EDNS: version: 0"

# many queries at once, over the resolver connections (up to 4, the rest pipelined), which
# dnsmasq closes after every 100 queries (its TCP_MAX_QUERIES): the queries in flight then are
# asked again on another connection. Three bursts of 250 (under the 256 a client may have
# waiting): ~62 a connection each, so every connection passes its 100th query mid-burst.
read -r r0 f0 <<<"$("$PGW_BIN/pgwctl" stats | jq -r '"\(.dns.requeued) \(.dns.upstream_failures)"')"
out=$(lab_exec lan python3 - <<-'PY'
	import socket, struct, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.168.2.10", 0)); s.settimeout(8)
	def q(i):
	    name = "burst%d.pgw.lab" % i
	    return struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
	got = {}
	for b in range(3):
	    for i in range(b * 250, b * 250 + 250):
	        s.sendto(q(i), ("192.168.2.1", 53))
	    try:
	        while len(got) < b * 250 + 250:
	            r = s.recv(512)
	            got[struct.unpack(">H", r[:2])[0]] = r[3] & 15
	    except socket.timeout:
	        break
	print("%d answered, %d NXDOMAIN" % (len(got), sum(1 for v in got.values() if v == 3)))
	PY
)
check_eq "750 queries in three bursts of 250, the resolver's connections closed by dnsmasq every 100: all answered" "$out" "750 answered, 750 NXDOMAIN"
read -r r1 f1 <<<"$("$PGW_BIN/pgwctl" stats | jq -r '"\(.dns.requeued) \(.dns.upstream_failures)"')"
check "... the queries in flight when dnsmasq closed (or reset) a connection were asked again ($((r1 - r0)) requeued)" \
	test $((r1 - r0)) -gt 0
check_eq "... none of them as a failed attempt" "$((f1 - f0))" "0"
# each query on a connection of its own where one is free (a resolver that Nagles its answers
# would hold each one until the next query on a busy one): 4 open to dnsmasq through the
# client's proxy after the bursts (one might just have been closed at its 100th query; a health
# check may add one; one at a time, the count would be 1 or 2)
n=$(lab_exec wan ss -Htn state established src "$LAB_SOCKS_AUTH" dst "$LAB_DNS" dport = :53 | wc -l)
check "... over several connections to the resolver at once (up to 4), not one ($n open)" test "$n" -ge 3

# the cache: a second query for the same name and proxy does not reach the server
n0=$(lab_dns_count www.$LAB_ZONE)
check_eq "a repeated query is answered" "$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE)" "NOERROR $LAB_WEB"
check_eq "... from the cache (the server saw no new query)" "$(lab_dns_count www.$LAB_ZONE)" "$n0"
# a query naming a client subnet (EDNS Client Subnet, RFC 7871): its answer may be for that subnet
# only, so it is neither taken from the cache nor put there (one device must not steer others')
check_eq "a query with a Client Subnet option is answered" \
	"$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE A +subnet=198.51.100.0/24)" "NOERROR $LAB_WEB"
q 192.168.2.10 192.168.2.1 www.$LAB_ZONE A +subnet=198.51.100.0/24 >/dev/null
check_eq "... by the server each time (two asked, two seen there)" "$(lab_dns_count www.$LAB_ZONE)" "$((n0 + 2))"
q 192.168.2.10 192.168.2.1 www.$LAB_ZONE >/dev/null
check_eq "... while the same question without it still comes from the cache" "$(lab_dns_count www.$LAB_ZONE)" "$((n0 + 2))"
out=$(lab_exec lan dig -b 192.168.2.10 @192.168.2.1 wWw.PgW.lAb +tries=1 +time=4 2>&1)
check_match "... with the client's id and its own case kept in the question" "$out" ";wWw.PgW.lAb\.[[:space:]]+IN[[:space:]]+A"

# refused at once: blocked (mapping disabled) and unmapped clients, nothing forwarded
t0=$(lab_ms)
check_eq "a blocked client (mapping disabled): REFUSED" "$(q 192.168.2.12 192.168.2.1 refused.$LAB_ZONE)" "REFUSED "
check_eq "an unmapped client: REFUSED" "$(q 192.168.2.13 $OTHER refused.$LAB_ZONE A +tcp)" "REFUSED "
check_eq "an unmapped IPv6 client: REFUSED" "$(q fd00:2::13 fd00:2::1 refused.$LAB_ZONE)" "REFUSED "
t=$(($(lab_ms) - t0))
check "... all three at once ($t ms for three, with dig's start-up)" test "$t" -lt 1500
check_eq "... and nothing of theirs reached the DNS server" "$(lab_dns_count refused.$LAB_ZONE)" "0"

out=$(lab_exec wan dig @$GW_WAN -p 15353 www.$LAB_ZONE +tries=1 +time=1 2>&1)
check_match "the resolver does not answer the WAN side (its port is dropped there)" "$out" "timed out|no servers could be reached"

# malformed queries: FORMERR with the client's id; a response is never answered
out=$(lab_exec lan python3 - <<-'PY'
	import socket
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.168.2.10", 0)); s.settimeout(3)
	s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05broken", ("192.168.2.1", 53))
	r = s.recv(512)
	print("%02x%02x rcode=%d" % (r[0], r[1], r[3] & 15))
	s.sendto(b"\x9a\xbc\x01\x00" + bytes(4996), ("192.168.2.1", 53)) # longer than any query
	r = s.recv(512)
	print("%02x%02x rcode=%d tc=%d" % (r[0], r[1], r[3] & 15, r[2] >> 1 & 1))
	s.settimeout(1) # a response (QR set) sent as a query: no answer at all, so no loops
	s.sendto(b"\x56\x78\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07pgw\x03lab\x00\x00\x01\x00\x01", ("192.168.2.1", 53))
	try:
	    s.recv(512); print("answered")
	except socket.timeout:
	    print("silence")
	PY
)
check_eq "a malformed query: FORMERR with its id; one of 5,000 bytes too, whole (no TC); a response sent as a query: no answer" "$out" "1234 rcode=1
9abc rcode=1 tc=0
silence"
# DNS over TCP as RFC 7766 has it: several queries in one write, answered each by its id; a
# client that half-closes after asking still gets its answers
out=$(lab_exec lan python3 - <<-'PY'
	import socket, struct
	def q(i, name):
	    m = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
	    return struct.pack(">H", len(m)) + m
	s = socket.create_connection(("192.168.2.1", 53), timeout=5, source_address=("192.168.2.10", 0))
	s.sendall(q(1, "www.pgw.lab") + q(2, "other.pgw.lab") + q(3, "nope.pgw.lab"))
	s.shutdown(socket.SHUT_WR)
	buf, got = b"", []
	while True:
	    d = s.recv(4096)
	    if not d: break
	    buf += d
	while len(buf) >= 2:
	    n = struct.unpack(">H", buf[:2])[0]; m = buf[2:2 + n]; buf = buf[2 + n:]
	    got.append("%d:%d" % (struct.unpack(">H", m[:2])[0], m[3] & 15))
	print(" ".join(sorted(got)))
	PY
)
check_eq "three pipelined queries on one TCP connection, half-closed: three answers by id" "$out" "1:0 2:0 3:3"
# more than one wake-up takes (64), each answered at once (FORMERR: a header and no question),
# in one write after a long one (which grew the connection's buffer, so a read brings more than
# 64), half-closed: every one answered, none left waiting for an event that never comes
out=$(lab_exec lan python3 - <<-'PY'
	import socket, struct
	s = socket.create_connection(("192.168.2.1", 53), timeout=5, source_address=("192.168.2.10", 0))
	big = struct.pack(">HHHHHHH", 1512, 3001, 0x0100, 0, 0, 0, 0) + bytes(1500)
	s.sendall(big + b"".join(struct.pack(">HHHHHHH", 12, i, 0x0100, 0, 0, 0, 0) for i in range(1, 3001)))
	s.shutdown(socket.SHUT_WR)
	buf, ids = b"", set()
	try:
	    while True:
	        d = s.recv(65536)
	        if not d: break
	        buf += d
	except socket.timeout:
	    pass
	while len(buf) >= 2:
	    n = struct.unpack(">H", buf[:2])[0]; m = buf[2:2 + n]; buf = buf[2 + n:]
	    ids.add(struct.unpack(">H", m[:2])[0])
	print(len(ids), min(ids, default=0), max(ids, default=0))
	PY
)
check_eq "a long query and 3,000 more pipelined in one write, answered at once, half-closed: 3,001 answers" "$out" "3001 1 3001"

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

# a client over its limit of 256 queries waiting: the rest SERVFAIL at once, and once the waiting
# ones are answered it is back to none waiting (a refused query used to take one off the count as
# well: the refused half got through, and the client's entry was freed while 22 still waited).
# A resolver that holds its answers until told keeps the 256 waiting; pgw-healthd paused (its
# check would wait too).
hold_gate=$LAB_DIR/dns-hold.go
lab_bg wan dns-hold python3 "$ROOT/tests/e2e/dns_hold.py" $LAB_DNS 5300 "$hold_gate" 120
lab_wait_port wan $LAB_DNS 5300 || echo "# the holding resolver did not start"
pause_healthd "$pid_healthd"
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "$LAB_DNS:5300"
check "(the forwarder reloaded: a resolver that holds its answers)" lab_fwd_reloaded "$n"
out=$(lab_exec lan env GATE="$hold_gate" python3 - <<-'PY'
	import os, socket, struct, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.168.2.10", 0))
	s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE: 256 answers at once, none dropped here
	def q(i, name):
	    return struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
	def collect(got, want, timeout):
	    s.settimeout(timeout)
	    try:
	        while len(got) < want:
	            r = s.recv(512)
	            got[struct.unpack(">H", r[:2])[0]] = r[3] & 15
	    except socket.timeout:
	        pass
	for i in range(300):  # in steps, so the resolver's socket buffer drops none of them
	    s.sendto(q(i, "limit%d.pgw.lab" % i), ("192.168.2.1", 53))
	    if i % 25 == 24:
	        time.sleep(0.005)
	got = {}
	collect(got, 300, 0.5)  # the refused, at once (the others wait for the resolver)
	early = len(got)
	open(os.environ["GATE"], "w").close()
	collect(got, 300, 5)
	s.sendto(q(1000, "limit-after.pgw.lab"), ("192.168.2.1", 53))
	after = {}
	collect(after, 1, 5)
	print("%d at once, %d SERVFAIL, %d NXDOMAIN; then %s" % (early, sum(1 for v in got.values() if v == 2),
	      sum(1 for v in got.values() if v == 3), after.get(1000, "nothing")))
	PY
)
check_eq "300 misses at once from one client: 256 wait, 44 SERVFAIL at once; then its next miss is asked (NXDOMAIN)" \
	"$out" "44 at once, 44 SERVFAIL, 256 NXDOMAIN; then 3"
kill -CONT "$pid_healthd" # (the holding resolver answers at once now: its check finds DNS up)

# all 256 TCP places taken, the oldest (idle, nothing waiting) by the address that connects again:
# that connection makes room for its own address's new one (which once used the address's entry
# after closing the old connection had freed it: the address's count went wrong and its next
# connections were refused). 255 from 16 unmapped addresses, REFUSED, keep the others busier.
for i in $(seq 200 215); do ip -n "$(lab_ns lan)" addr add 192.168.2.$i/24 dev lan0; done
out=$(lab_exec lan python3 - <<-'PY'
	import socket, struct, time
	def ask(c, i, name):
	    m = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
	    try:
	        c.sendall(struct.pack(">H", len(m)) + m)
	        b = b""
	        while len(b) < 2 or len(b) < 2 + struct.unpack(">H", b[:2])[0]:
	            d = c.recv(4096)
	            if not d:
	                return "closed"
	            b += d
	        return str(b[5] & 15)
	    except OSError:
	        return "closed"
	def conn(src):
	    return socket.create_connection(("192.168.2.1", 53), timeout=5, source_address=(src, 0))
	a1 = conn("192.168.2.10")
	r1 = ask(a1, 1, "evict-a1.pgw.lab")
	time.sleep(0.05)
	others = [conn("192.168.2.%d" % (200 + k // 16)) for k in range(255)]
	refused = sum(1 for c in others if ask(c, 2, "evict.pgw.lab") == "5")
	a2 = conn("192.168.2.10")
	r2 = ask(a2, 3, "evict-a2.pgw.lab")
	try:
	    a1.settimeout(2)
	    gone = "closed" if a1.recv(1) == b"" else "open"
	except OSError:
	    gone = "closed"
	a2.close()
	time.sleep(0.2)
	a3 = conn("192.168.2.10")
	r3 = ask(a3, 4, "evict-a3.pgw.lab")
	print("first %s, %d refused, second %s (first %s), third %s" % (r1, refused, r2, gone, r3))
	PY
)
for i in $(seq 200 215); do ip -n "$(lab_ns lan)" addr del 192.168.2.$i/24 dev lan0; done
check_eq "256 TCP clients, then the address of the idlest again: its old connection makes room, the new one and the next are answered" \
	"$out" "first 3, 255 refused, second 3 (first closed), third 3"
check "... and the forwarder is still running" kill -0 "$pid_forwarder"

# DNS over TLS through the proxy, the certificate checked against the name
dns_of() { sqlite3 "$PGW_DB" "SELECT dns_status FROM proxy_health WHERE proxy_id = $1"; }
dns_is() { [ "$(dns_of "$1")" = "$2" ]; }
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "tls://$LAB_DOT:853#dot.$LAB_ZONE"
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
check_eq "DNS over TLS through SOCKS5: the answer" "$(q 192.168.2.10 192.168.2.1 tls.$LAB_ZONE)" "NOERROR 203.0.113.12"
check_eq "DNS over TLS through HTTP CONNECT, client over TCP" "$(q 192.168.2.11 $OTHER tls.$LAB_ZONE A +tcp)" "NOERROR 203.0.113.12"
check_eq "DNS over TLS: an answer of over 8 KB (40 records) whole, read in parts of TLS records" \
	"$(q 192.168.2.10 192.168.2.1 huge.$LAB_ZONE TXT +tcp | wc -w)" "41"
check_eq "the TLS resolver saw the queries from the proxies' exit addresses only" \
	"$(lab_dot_sources | tr '\n' ' ')" "$LAB_SOCKS_AUTH $LAB_HTTP_PROXY "
# the forwarder's own check of the name: pgw-healthd paused, so its verdict cannot answer first
healthd_pid=$(awk '$2 == "pgw-healthd" {print $1}' "$LAB_DIR/pids")
pause_healthd "$healthd_pid"
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "tls://$LAB_DOT:853#wrong.$LAB_ZONE"
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
check_eq "a TLS resolver whose certificate is not for the name: SERVFAIL" "$(q 192.168.2.10 192.168.2.1 tls2.$LAB_ZONE)" "SERVFAIL "
check "... the forwarder refused the certificate itself, and says why" \
	grep -q "dns: resolver $LAB_DOT:853 through proxy 1: TLS certificate not accepted: .*does not match" "$LAB_DIR/pgw-forwarder.log"
kill -CONT "$healthd_pid"
check "... and pgw-healthd marks the proxy's DNS down" wait_for 8 dns_is 1 down
check_match "... saying why" "$(lab_db "SELECT dns_error FROM proxy_health WHERE proxy_id = 1")" "TLS certificate not accepted: .*name .*does not match"
# failover: the first resolver answers nothing, the second does
ctl settings set dns_upstream "198.51.100.250:53, $LAB_DNS:53"
check "with a second resolver that answers, pgw-healthd finds DNS up again" wait_for 12 dns_is 1 up
check_eq "failover to the second resolver when the first cannot be reached" "$(q 192.168.2.10 192.168.2.1 other.$LAB_ZONE TXT)" "NOERROR "

# a query waiting on a resolver when its client is disabled is answered REFUSED and never asked
# again through the proxy (its retry to the second resolver was due 2 s after it went); a
# resolver that never answers on its connection (held open) first. pgw-healthd paused meanwhile
# (its own check of that resolver would wait too), for less than its results stay fresh (10 s).
lab_bg wan dns-stall python3 "$ROOT/tests/e2e/dns_hold.py" $LAB_DNS 5301 "$LAB_DIR/dns-stall.go" 90 stall
lab_wait_port wan $LAB_DNS 5301 || echo "# the stalling resolver did not start"
checked1() { sqlite3 -cmd '.timeout 2000' "$PGW_DB" "SELECT checked_at FROM proxy_health WHERE proxy_id = 1"; }
probed_since() { [ "$(checked1)" != "$1" ]; }
c0=$(checked1)
wait_for 6 probed_since "$c0" # (a fresh result before each pause: they stay fresh 10 s)
pause_healthd "$healthd_pid"
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "$LAB_DNS:5301, $LAB_DNS:53"
ctl settings set dns_query_log true
check "(the forwarder reloaded: a first resolver that answers nothing, a second that does; the query log on)" \
	lab_fwd_reloaded "$n"
q 192.168.2.10 192.168.2.1 inflight.$LAB_ZONE >"$LAB_DIR/inflight.out" &
qpid=$!
sleep 0.3
n=$(lab_fwd_reloads)
lab_db "UPDATE mappings SET enabled = 0 WHERE client_ip = '192.168.2.10'"
check "(the forwarder reloaded: 192.168.2.10 disabled while its query waits)" lab_fwd_reloaded "$n"
wait "$qpid"
check_eq "a query waiting on a resolver when its client is disabled: REFUSED" "$(cat "$LAB_DIR/inflight.out")" "REFUSED "
check "... answered so while it waited (the query log: blocked meanwhile)" \
	grep -q "dns: 192.168.2.10 inflight.$LAB_ZONE. type 1 -> REFUSED (blocked meanwhile" "$LAB_DIR/pgw-forwarder.log"
sleep 2
check_fails "... and it is never asked through the proxy again (the second resolver did not see it)" \
	grep -q "inflight\.$LAB_ZONE" "$LAB_DIR/dnsmasq-queries.log"
lab_db "UPDATE mappings SET enabled = 1 WHERE client_ip = '192.168.2.10'"
ctl settings set dns_query_log false
kill -CONT "$healthd_pid"
check "(192.168.2.10 active again)" wait_for 10 active4_has 192.168.2.10
c0=$(checked1)
wait_for 8 probed_since "$c0"
# a connection held open that answers nothing is closed when its query times out: the next query
# goes on a new connection (it used to be picked first, idle, for every query: SERVFAIL for good)
pause_healthd "$healthd_pid"
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "$LAB_DNS:5301"
check "(the forwarder reloaded: only that resolver)" lab_fwd_reloaded "$n"
check_eq "a query on a connection that answers nothing: SERVFAIL when its two attempts' time is up (4 s)" \
	"$(q 192.168.2.10 192.168.2.1 stall1.$LAB_ZONE A +time=7)" "SERVFAIL "
touch "$LAB_DIR/dns-stall.go" # (new connections are answered from now on)
check_eq "... that connection was closed: the next query goes on a new one, answered" \
	"$(q 192.168.2.10 192.168.2.1 stall2.$LAB_ZONE)" "NXDOMAIN "
check "... and the forwarder said why" \
	grep -q "dns: resolver $LAB_DNS:5301 through proxy 1: timed out: no answer on its connection" "$LAB_DIR/pgw-forwarder.log"
n=$(lab_fwd_reloads)
ctl settings set dns_upstream "198.51.100.250:53, $LAB_DNS:53"
check "(the forwarder reloaded: the resolvers before)" lab_fwd_reloaded "$n"
kill -CONT "$healthd_pid"
check "(the proxy's DNS up)" wait_for 12 dns_is 1 up

lab_stop_pid "$wan_dns_pid"
n=$(lab_pcap_count "$LAB_DIR/wan-dns.pcap")
[ "$n" != 0 ] && head -5 "$LAB_DIR/wan-dns.pcap.txt" 2>/dev/null | sed 's/^/#   /'
check_eq "tcpdump on the WAN interface: 0 DNS packets (ports 53, 853) outside the proxy connections" "$n" "0"
n=$(lab_capture_stop)
check_eq "... and 0 packets from any client address" "$n" "0"
check_eq "the DNS server saw every query from a proxy's exit address, never the gateway's" \
	"$(lab_dns_sources | tr '\n' ' ')" "$LAB_SOCKS_AUTH $LAB_SOCKS_NOAUTH $LAB_HTTP_PROXY "
check_fails "... not once from the gateway ($GW_WAN)" grep -q "from $GW_WAN\$" "$LAB_DIR/dnsmasq-queries.log"
n=$(lab_fwd_reloads)
ctl settings set dns_query_log true
check "(the forwarder reloaded)" lab_fwd_reloaded "$n"
q 192.168.2.10 192.168.2.1 other.$LAB_ZONE >/dev/null
check "dns_query_log on: the query is logged with client, name and answer" \
	wait_for 3 grep -q "dns: 192.168.2.10 other.$LAB_ZONE. type 1 -> NOERROR" "$LAB_DIR/pgw-forwarder.log"
# (the stats are asked for now: no wait)
stats=$("$PGW_BIN/pgwctl" stats)
metrics=$(lab_exec gw curl -s -H "Authorization: Bearer $PGW_METRICS_TOKEN" http://127.0.0.1:8080/metrics)
check_match "/metrics: queries by transport" "$metrics" 'pgw_dns_queries_total\{transport="udp"\} [1-9]'
check_match "/metrics: cache hits, errors by rcode, latency histogram" "$metrics" 'pgw_dns_cache_hits_total [1-9].*pgw_dns_errors_total\{rcode="refused"\} [1-9].*pgw_dns_latency_milliseconds_count [1-9]'
check_match "/metrics: per proxy and per client" "$metrics" 'pgw_proxy_dns_queries_total\{id="1"\} [1-9].*pgw_client_dns_queries_total\{client="192.168.2.10"\} [1-9].*pgw_client_dns_latency_milliseconds_sum\{client="192.168.2.10"\} [0-9]'
check_match "/metrics: each proxy's DNS check" "$metrics" 'pgw_proxy_dns_up\{proxy="socks-auth",id="1"\} 1.*pgw_proxy_dns_up\{proxy="dante-no-dns",id="4"\} 0'
echo 'dns-admin-password' | "$PGW_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
# a real browser in the LAN namespace opens the lab site by name; its resolv.conf names an
# address nobody serves (like a device with a hard-coded resolver)
if [ -d "$ROOT/tests/web/node_modules/playwright-core" ]; then
	lab_resolv_conf lan $OTHER
	out=$(cd "$ROOT/tests/web" && lab_exec lan timeout 60 node browse.mjs "http://www.$LAB_ZONE/" 2>&1)
	check_eq "Chromium in the LAN opens http://www.$LAB_ZONE/ by name" "$out" "status 200
the lab internet"
	out=$(cd "$ROOT/tests/web" && lab_exec lan timeout 60 node browse.mjs "http://www.$LAB_ZONE/ip" 2>&1)
	check_eq "... through its proxy (the site sees the proxy's exit address)" "$out" "status 200
$LAB_SOCKS_AUTH"
else
	check "playwright-core is installed (make deps)" false
fi
health=$(lab_api GET /api/v1/health -H "$(lab_api_login admin dns-admin-password)" | cut -d' ' -f2-)
check "GET /health: each proxy's DNS status, error and latency" \
	jq -e '(.items[] | select(.proxy_id == 1) | .dns == "up" and (.dns_latency_ms | type) == "number") and
	       (.items[] | select(.proxy_id == 4) | .dns == "down" and (.dns_error | test("port|53|proxy")))' <<<"$health"
check "the forwarder's stats count queries, cache hits and errors" \
	jq -e '.dns.queries > 10 and .dns.cache_hits >= 1 and .dns.refused >= 3 and .dns.servfail >= 1 and .dns.formerr >= 1' <<<"$stats"
check "... per client" jq -e '.clients["192.168.2.10"].dns_queries > 3' <<<"$stats"

# an organisation with resolvers of its own (org_settings dns_upstream, issue 21): its client's
# queries go, through its own proxy, to unbound over DNS-over-TLS; organisation 1's still to
# dnsmasq; pgw-healthd checks its proxy's DNS on its resolvers
ip -n "$(lab_ns lan)" addr add 192.168.2.20/24 dev lan0
ADMIN=$(lab_api_login admin dns-admin-password)
J='Content-Type: application/json'
check_match "organisation 1 keeps 192.168.2.0/28 and the IPv6 LAN" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ADMIN" -H "$J" -d '{"networks":["192.168.2.0/28","fd00:2::/64"]}')" '^200 '
check_match "a second organisation, acme, with 192.168.2.16/28" \
	"$(lab_api POST /api/v1/orgs -H "$ADMIN" -H "$J" -d '{"name":"acme","networks":["192.168.2.16/28"]}')" '^201 '
acme=$(lab_api GET /api/v1/orgs -H "$ADMIN" | cut -d' ' -f2- | jq '.items[] | select(.name == "acme") | .id')
check_match "acme's own resolvers: DNS-over-TLS to unbound" \
	"$(lab_api PUT /api/v1/orgs/$acme/settings -H "$ADMIN" -H "$J" -d "{\"dns_upstream\":\"tls://$LAB_DOT:853#dot.$LAB_ZONE\"}")" \
	"^200 .*\"dns_upstream\": *\"tls://$LAB_DOT:853#dot.$LAB_ZONE\""
check_match "... a bad list is refused (400)" \
	"$(lab_api PUT /api/v1/orgs/$acme/settings -H "$ADMIN" -H "$J" -d '{"dns_upstream":"not a resolver!"}')" '^400 '
pid5=$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "X-Pgw-Org: $acme" -H "$J" \
	-d "{\"name\":\"acme-socks\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_AUTH\",\"port\":1080,\"username\":\"$LAB_PROXY_USER\",\"password\":\"$LAB_PROXY_PASS\"}" |
	cut -d' ' -f2- | jq .id)
check_match "acme maps its client 192.168.2.20 to its own proxy" \
	"$(lab_api POST /api/v1/mappings -H "$ADMIN" -H "X-Pgw-Org: $acme" -H "$J" -d "{\"client_ip\":\"192.168.2.20\",\"proxy_id\":$pid5}")" '^201 '
check "... which is active" wait_for 10 active4_has 192.168.2.20
check "pgw-healthd checks acme's proxy's DNS on acme's resolvers (DNS-over-TLS): up" \
	wait_for 15 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT dns_status FROM proxy_health WHERE proxy_id = $pid5')\" = up ]"
check_match "acme's client resolves through its proxy" "$(q 192.168.2.20 192.168.2.1 www.$LAB_ZONE)" "^NOERROR $LAB_WEB"
check_match "... asked of its own resolvers: unbound saw the name, from acme's proxy's exit address" \
	"$(q 192.168.2.20 192.168.2.1 acme-only.$LAB_ZONE; grep 'acme-only' "$LAB_DIR/unbound-file.log")" "info: $LAB_SOCKS_AUTH acme-only"
check_eq "... and dnsmasq (the gateway's resolver) never did" "$(lab_dns_count acme-only.$LAB_ZONE)" "0"
check_match "organisation 1's client still asks the gateway's resolver (dnsmasq)" \
	"$(q 192.168.2.10 192.168.2.1 org1-only.$LAB_ZONE; lab_dns_count org1-only.$LAB_ZONE)" " [1-9]$"
check_eq "... never acme's" "$(grep -c 'org1-only' "$LAB_DIR/unbound-file.log")" "0"
# the forwarder's mappings unreadable (a table it reads renamed away; pgw-agent reads none of it,
# so the kernel keeps granting): it keeps its last table for 5 s from the first reload that
# fails, then blocks every client itself, DNS SERVFAIL (a name in its cache too) and TCP refused,
# until it reads them again
check_match "a table the forwarder reads, renamed away: before, 192.168.2.10 resolves" \
	"$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE)" "^NOERROR $LAB_WEB"
ql() { grep -c "dns: 192.168.2.10 www.$LAB_ZONE. type 1 -> $1" "$LAB_DIR/pgw-forwarder.log"; }
n=$(ql 'NOERROR (cache')
q 192.168.2.10 192.168.2.1 www.$LAB_ZONE >/dev/null
check "... the name is in its cache (answered from it)" test "$(ql 'NOERROR (cache')" -gt "$n"
servfail() { q 192.168.2.10 192.168.2.1 www.$LAB_ZONE A +time=1 | grep -q '^SERVFAIL'; }
# a download open before it (8 MB at nginx's 256 KiB/s: 32 s), to be cut with the block
head -c 8M /dev/urandom >"$LAB_DIR/www/files/blind.bin"
rm -f "$LAB_DIR/blind.end"
lab_bg lan dl-blind bash -c "curl -s -o /dev/null --interface 192.168.2.10 http://$LAB_WEB/slow/blind.bin; echo \$? > $LAB_DIR/blind.end"
check "(a download of the client's under way through the forwarder)" \
	wait_for 5 bash -c "ip netns exec $(lab_ns gw) ss -Htn state established '( sport = :12345 )' | grep -q '192.168.2.10:'"
revoked() { grep -c 'client=192.168.2.10:[0-9]* .*close=revoked' "$LAB_DIR/pgw-forwarder.log"; }
rv0=$(revoked)
lab_db "ALTER TABLE usage_seen RENAME TO usage_seen_away"
ctl notify mappings # (a schema change moves no change counter: the forwarder is told)
check "... the reload fails; the forwarder keeps its table, for 5 s (logged)" \
	wait_for 5 grep -q "reload (event) failed, keeping the current table (trying again every second; every client blocked if none works for 5 s)" "$LAB_DIR/pgw-forwarder.log"
check "... then its DNS is SERVFAIL" wait_for 12 servfail
# the log's own times: from the first failed reload to the block
ms() { grep -m1 "$1" "$LAB_DIR/pgw-forwarder.log" | grep -o '[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]*' | head -1 |
	awk -F: '{printf "%d", ($1 * 3600 + $2 * 60 + $3) * 1000}'; }
t0=$(ms 'reload (event) failed, keeping the current table') t1=$(ms 'no mappings read for 5 s')
echo "# every client blocked $((t1 - t0)) ms after the first failed reload (bound: 5 s, retried every second)"
check "... 5-7 s after the first failed reload, by the log's clock" test "$((t1 - t0))" -ge 5000 -a "$((t1 - t0))" -le 7000
check "... logged: every client blocked" \
	grep -q "no mappings read for 5 s: every client blocked ([1-9][0-9]* were active" "$LAB_DIR/pgw-forwarder.log"
check "... the query log gives the reason (the cache is not asked)" test "$(ql 'SERVFAIL (mappings unreadable')" -gt 0
check_eq "... the stats say so (mappings_unread)" "$("$PGW_BIN/pgwctl" stats | jq -r .mappings_unread)" "true"
# since when: the first failed reload, which the log's time says (both UTC; a day's ms compared)
since=$("$PGW_BIN/pgwctl" stats | jq -r .mappings_unread_since_ms)
d=$((((${since:-0} % 86400000 - t0) % 86400000 + 86400000 + 43200000) % 86400000 - 43200000))
check "... since the first failed reload (mappings_unread_since_ms, $d ms from the log's time of it)" test "${d#-}" -le 200
check_match "... and /metrics" "$(lab_api GET /metrics -H "Authorization: Bearer $PGW_METRICS_TOKEN")" \
	'pgw_forwarder_mappings_unread 1'
check_match "... and pgwctl status, with how long (5 s or more)" "$("$PGW_BIN/pgwctl" status)" \
	'forwarder: BLOCKING EVERY CLIENT: no mappings read for ([5-9]|[1-9][0-9]) s '
check_eq "... pgw-agent still grants it in the kernel" "$(active4_has 192.168.2.10 && echo yes)" "yes"
n=$(grep -c 'client=192.168.2.10[: ].*close=blocked_client' "$LAB_DIR/pgw-forwarder.log")
check_fails "... yet its TCP is refused by the forwarder" \
	lab_exec lan curl -s -m 5 --interface 192.168.2.10 -o /dev/null http://$LAB_WEB/ip
check "... as a blocked client (its log)" \
	wait_for 3 test "$(grep -c 'client=192.168.2.10[: ].*close=blocked_client' "$LAB_DIR/pgw-forwarder.log")" -gt "$n"
wait_for 3 test -s "$LAB_DIR/blind.end"
rc=$(cat "$LAB_DIR/blind.end" 2>/dev/null)
check "... and its download open before is cut (curl exit ${rc:-none}: not a complete transfer)" test -n "$rc" -a "$rc" != 0
check "... as revoked (its log)" test "$(revoked)" -gt "$rv0"
lab_db "ALTER TABLE usage_seen_away RENAME TO usage_seen" # and nothing notified: its retry finds it
check "... the table back: the mappings are read again (logged)" \
	wait_for 5 grep -q "clients (recovered: clients relayed again" "$LAB_DIR/pgw-forwarder.log"
n=$(ql 'NOERROR (resolved')
check_match "... and it resolves again" "$(q 192.168.2.10 192.168.2.1 www.$LAB_ZONE)" "^NOERROR $LAB_WEB"
check "... asked of the resolver again: the cache started over (answers that came while blocked go)" \
	test "$(ql 'NOERROR (resolved')" -gt "$n"
check_eq "... and its TCP goes through its proxy again" \
	"$(lab_exec lan curl -s -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" "$LAB_SOCKS_AUTH"
check_eq "... the stats say so" "$("$PGW_BIN/pgwctl" stats | jq -r '[.mappings_unread, .mappings_unread_since_ms] | @text')" '[false,null]'
check_eq "... and pgwctl status no longer" "$("$PGW_BIN/pgwctl" status | grep -c 'BLOCKING EVERY CLIENT')" "0"
# the settings' values unreadable while their table reads (a column renamed away; on a box: a
# corrupt page): no daemon takes the defaults for them. The forwarder's reload fails as for an
# unreadable table (its table kept, the 5 s bound as above); healthd probes on with what it has
loaded() { grep -c 'mappings loaded' "$LAB_DIR/pgw-forwarder.log"; }
paces() { grep -c 'probing every' "$LAB_DIR/pgw-healthd.log"; }
n=$(loaded) pace=$(paces)
lab_db "ALTER TABLE settings RENAME COLUMN value TO value_away"
"$PGW_BIN/pgwctl" notify settings >/dev/null
check "settings whose values do not read: the forwarder's reload fails, saying so (no default taken for them)" \
	wait_for 5 grep -q "reload (event) failed, keeping the current table .*: a setting could not be read" "$LAB_DIR/pgw-forwarder.log"
check "... healthd keeps the settings in use (logged)" \
	wait_for 5 grep -q "settings do not read (.*): probing on with the ones in use" "$LAB_DIR/pgw-healthd.log"
check_eq "... nothing loaded meanwhile" "$(loaded)" "$n"
sleep 1 # (healthd tries again every 250 ms meanwhile)
check_eq "... and its probes keep their pace (health_interval 2, not its default 30: no 'probing every' line)" \
	"$(paces)" "$pace"
lab_db "ALTER TABLE settings RENAME COLUMN value_away TO value"
"$PGW_BIN/pgwctl" notify settings >/dev/null
check "... back: the forwarder loads again" wait_for 5 bash -c "[ \$(grep -c 'mappings loaded' '$LAB_DIR/pgw-forwarder.log') -gt $n ]"
check "... and healthd reads them" wait_for 5 grep -q "settings read again" "$LAB_DIR/pgw-healthd.log"
check_eq "... the same as before (its pace unchanged)" "$(paces)" "$pace"
relays10() { [ "$(lab_exec lan curl -s -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" = "$LAB_SOCKS_AUTH" ]; }
check "... the client relays" wait_for 5 relays10
finish
