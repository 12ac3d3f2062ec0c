#!/usr/bin/env bash
# Scenario: IPv6 clients. A mapping's client may be an IPv6 address: the API stores its one
# canonical spelling; the agent puts it in the IPv6 sets and redirects its TCP to the
# forwarder; the forwarder takes it on its IPv6 listener, finds the original destination with
# IP6T_SO_ORIGINAL_DST and CONNECTs to it through the client's proxy (SOCKS5 ATYP 4 or HTTP
# CONNECT [v6]:port). The same in TPROXY mode. The lab's nginx sees the proxy's own IPv6
# address; no IPv6 client packet crosses the WAN interface, when active, blocked or unmapped.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
n=$(lab_capture_control)
check "control: without pgw, an unmapped client's packets (IPv4 and IPv6) cross the WAN and are seen ($n)" test "$n" -gt 0
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
# proxies whose outgoing IPv6 address is their own, so the lab's /ip tells them apart
wan=$(lab_ns wan)
ip -n "$wan" addr add 198.51.100.30/24 dev wan0
ip -n "$wan" addr add 198.51.100.31/24 dev wan0
ip -n "$wan" addr add 2001:db8:100::30/64 dev wan0 nodad
ip -n "$wan" addr add 2001:db8:100::31/64 dev wan0 nodad
lab_bg wan socks6-auth microsocks -i 198.51.100.30 -p 1080 -u $LAB_PROXY_USER -P $LAB_PROXY_PASS -b 2001:db8:100::30
lab_bg wan socks6-open microsocks -i 198.51.100.31 -p 1080 -b 2001:db8:100::31
ip -n "$wan" addr add 198.51.100.32/24 dev wan0
ip -n "$wan" addr add 2001:db8:100::32/64 dev wan0 nodad
# (no Bind: its health probe goes to the lab's IPv4 URL, the clients' requests to IPv6)
sed -e 's/^Listen .*/Listen 198.51.100.32/' -e '/^Bind /d' -e 's/^LogLevel .*/LogLevel Info/' -e "s|tinyproxy-file.log|http6-file.log|" \
	-e "s|tinyproxy.pid|http6.pid|" "$LAB_DIR/tinyproxy.conf" >"$LAB_DIR/http6.conf"
lab_bg wan http6 tinyproxy -d -c "$LAB_DIR/http6.conf"
lab_wait_port wan 198.51.100.30 1080 && lab_wait_port wan 198.51.100.31 1080 && lab_wait_port wan 198.51.100.32 8888 || exit 1
$ctl settings set health_interval 2 >/dev/null
$ctl settings set health_timeout 1 >/dev/null
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES
    (1, 'socks6-auth', 'socks5', '198.51.100.30', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
    (2, 'socks6-open', 'socks5', '198.51.100.31', 1080, '', ''),
    (3, 'http6-auth', 'http', '198.51.100.32', 8888, '$LAB_PROXY_USER', '$LAB_PROXY_PASS');"
export PGW_JWT_SECRET=lab-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080
printf 'admin-password-1\n' | $ctl user add admin --role admin --password-stdin >/dev/null
for d in api healthd agent forwarder; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
check "all three proxies up" wait_for 5 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT count(*) FROM proxy_health WHERE status = 'up'\") = 3 ]"

# the API: canonical spelling, clear errors for what cannot be a client
API=http://127.0.0.1:8080/api/v1
apic() { lab_exec gw curl -s -H "Authorization: Bearer $TOKEN" "$@"; }
apij() { apic -H 'Content-Type: application/json' "$@"; }
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
TOKEN=$(lab_exec gw curl -s -H 'Content-Type: application/json' -d '{"username":"admin","password":"admin-password-1"}' "$API/auth/login" | jq -r .token)
out=$(apij -d '{"client_ip":"FD00:2:0::0010","proxy_id":1}' "$API/mappings")
check_eq "POST an IPv6 client: stored in canonical form" "$(jq -r .client_ip <<<"$out")" "fd00:2::10"
out=$(apij -w '%{http_code}' -o /dev/null -d '{"client_ip":"fd00:2::10","proxy_id":2}' "$API/mappings")
check_eq "the same client spelled the canonical way: 409 (one client, one mapping)" "$out" 409
out=$(apij -d '{"client_ip":"fe80::1","proxy_id":1}' "$API/mappings")
check_match "link-local: 400 with the reason" "$(jq -r .error.message <<<"$out")" "link-local address, which cannot be a client"
out=$(apij -d '{"client_ip":"fd00:2::99%lan0","proxy_id":1}' "$API/mappings")
check_match "with a zone: 400" "$(jq -r .error.code <<<"$out")" "bad_request"
check_eq "nothing else was stored" "$(db "SELECT count(*) FROM mappings")" 1
out=$(printf 'client_ip,proxy\nfd00:2::11,socks6-open\nFD00:2::0:12,http6-auth\nff02::1,http6-auth\n' |
	apic -H 'Content-Type: text/csv' --data-binary @- "$API/mappings/import")
check_match "CSV import: the multicast line refused with its reason, nothing imported" \
	"$(jq -c .error.lines <<<"$out")" '"line":4,"error":"client_ip is an IPv6 multicast address'
check_eq "... all or nothing" "$(db "SELECT count(*) FROM mappings")" 1
out=$(printf 'client_ip,proxy\nfd00:2::11,socks6-open\nFD00:2::0:12,http6-auth\n' |
	apic -H 'Content-Type: text/csv' --data-binary @- "$API/mappings/import")
check_eq "CSV import of two IPv6 clients, canonical spelling stored" \
	"$(db "SELECT group_concat(client_ip, ' ') FROM (SELECT client_ip FROM mappings ORDER BY id)")" "fd00:2::10 fd00:2::11 fd00:2::12"

gw=$(lab_ns gw)
check "the agent: IPv6 clients in the kernel's active6 set" \
	wait_for 3 bash -c "ip netns exec $gw nft list set inet pgw active6 | grep -q 'fd00:2::10' && ip netns exec $gw nft list set inet pgw active6 | grep -q 'fd00:2::12'"
fetch6() { lab_exec lan curl -s -m 5 --interface "$1" "http://[$LAB_WEB6]/ip"; }
lab_capture_start v6 || exit 1
check_eq "IPv6 client through microsocks with auth: nginx sees the proxy's IPv6 address" "$(fetch6 fd00:2::10)" "2001:db8:100::30"
check_eq "IPv6 client through microsocks without auth" "$(fetch6 fd00:2::11)" "2001:db8:100::31"
ans=$(fetch6 fd00:2::12)
check_match "IPv6 client through tinyproxy with BasicAuth: answered with an address of the lab ($ans)" "$ans" '^2001:db8:[0-9a-f:]+$'
check "... tinyproxy was asked to CONNECT to [$LAB_WEB6]:80" grep -q "CONNECT.*\[$LAB_WEB6\]:80" "$LAB_DIR/http6-file.log"
check "access log: the client and the original destination in [v6]:port form" \
	grep -q "client=\[fd00:2::10\]:[0-9]* dst=\[$LAB_WEB6\]:80 proxy=1 .*close=done" "$LAB_DIR/pgw-forwarder.log"
head -c 5000000 /dev/urandom >"$LAB_DIR/www/files/rand6.bin"
sum=$(lab_exec lan curl -s -m 10 --interface fd00:2::11 "http://[$LAB_WEB6]/files/rand6.bin" | sha256sum)
check_eq "5 MB over IPv6 through the relay: byte-identical" "$sum" "$(sha256sum <"$LAB_DIR/www/files/rand6.bin")"
check "per-client stats name the IPv6 client" \
	wait_for 3 bash -c "jq -e '.clients[\"fd00:2::11\"].bytes_down >= 5000000' <($PGW_BIN/pgwctl stats)"
check_fails "an unmapped IPv6 client gets nothing" fetch6 fd00:2::13

# blocked: proxy killed -> the IPv6 client is in blocked6 and gets no answer
kill_pid=$(awk '$2 == "socks6-open" {print $1}' "$LAB_DIR/pids")
lab_stop_pid "$kill_pid"
check "proxy down: its IPv6 client moves to blocked6" \
	wait_for 5 bash -c "ip netns exec $gw nft list set inet pgw blocked6 | grep -q 'fd00:2::11'"
check_fails "... and gets no connection" fetch6 fd00:2::11
lab_client_tries 192.168.2.13 fd00:2::11
lab_client_tries 192.168.2.13 fd00:2::13
# the forwarder killed: active IPv6 clients' TCP is redirected to nothing, never forwarded
kill -KILL "$pid_forwarder"
lab_client_tries 192.168.2.10 fd00:2::10
n=$(lab_capture_stop)
check_eq "no IPv6 client packet crossed the WAN interface (active, blocked, unmapped, forwarder dead)" "$n" 0

# TPROXY mode, IPv6
lab_bg gw pgw-forwarder2 "$PGW_BIN/pgw-forwarder"
$ctl settings set forwarder_mode tproxy >/dev/null
check "TPROXY: the agent rebuilt with the tproxy rule for IPv6" \
	wait_for 3 bash -c "ip netns exec $gw nft list chain inet pgw mangle_prerouting | grep -q 'tproxy ip6 to :'"
check "TPROXY: the IPv6 policy route is there" wait_for 3 bash -c "ip -n $gw -6 rule | grep -q 'fwmark 0x2470 lookup 2470'"
check_eq "TPROXY: IPv6 client through its proxy" "$(fetch6 fd00:2::10)" "2001:db8:100::30"
check "TPROXY: the access log has the IPv6 destination (getsockname)" \
	grep -q "client=\[fd00:2::10\]:[0-9]* dst=\[$LAB_WEB6\]:80 proxy=1 .*close=done" "$LAB_DIR/pgw-forwarder2.log"
$ctl settings set forwarder_mode redirect >/dev/null
$ctl settings set udp_relay false >/dev/null
check "back to REDIRECT (and udp_relay off): the IPv6 policy route removed" \
	wait_for 3 bash -c "! ip -n $gw -6 rule | grep -q 'fwmark 0x2470'"
finish
