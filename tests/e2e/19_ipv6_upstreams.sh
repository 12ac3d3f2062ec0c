#!/usr/bin/env bash
# Scenario: upstream proxies at IPv6 addresses, and an IPv6 health URL. The API stores a
# proxy's IPv6 host in its canonical spelling and refuses brackets and ports in 'host' with a
# clear reason; pgw-healthd probes the proxies over IPv6 (status up, exit IP); the forwarder
# reaches them over IPv6 for IPv4 and IPv6 clients; with strict_output the gateway reaches
# them through the kernel set proxies6 only; the health URL may be http://[IPv6]:port/path.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
lab_start_nginx >/dev/null || { echo "# nginx failed"; exit 1; }
export PGW_SERVICE_USER=nobody
lab_pgw_env
mkdir -p "$PGW_RUN_DIR"
chmod 755 "$LAB_DIR"
chmod 777 "$PGW_RUN_DIR" # the forwarder runs as nobody (strict_output needs the service user)
ctl=$PGW_BIN/pgwctl
db() { sqlite3 "$PGW_DB" "$@"; }
# proxies listening on IPv6 only, each leaving from its own IPv4 address
wan=$(lab_ns wan)
S6=2001:db8:100::40 H6=2001:db8:100::42
for a in 198.51.100.40 198.51.100.42; do ip -n "$wan" addr add $a/24 dev wan0; done
for a in $S6 $H6; do ip -n "$wan" addr add $a/64 dev wan0 nodad; done
lab_bg wan socks-v6 microsocks -i $S6 -p 1080 -u $LAB_PROXY_USER -P $LAB_PROXY_PASS -b 198.51.100.40
cat >"$LAB_DIR/http-v6.conf" <<CONF
Port 8888
Listen $H6
Bind 198.51.100.42
Timeout 60
BasicAuth $LAB_PROXY_USER $LAB_PROXY_PASS
DisableViaHeader Yes
LogLevel Info
LogFile "$LAB_DIR/http-v6-file.log"
PidFile "$LAB_DIR/http-v6.pid"
CONF
lab_bg wan http-v6 tinyproxy -d -c "$LAB_DIR/http-v6.conf"
# dante at an IPv6 address, leaving from 198.51.100.44 to IPv4 and from its own IPv6 address to IPv6
D6=2001:db8:100::44
ip -n "$wan" addr add 198.51.100.44/24 dev wan0
ip -n "$wan" addr add $D6/64 dev wan0 nodad
cat >"$LAB_DIR/danted-v6.conf" <<CONF
logoutput: $LAB_DIR/danted-v6-file.log
internal: $D6 port = 1080
external: 198.51.100.44
external: $D6
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: ::/0 to: ::/0 }
socks pass { from: ::/0 to: 0.0.0.0/0 command: connect }
socks pass { from: ::/0 to: ::/0 command: connect }
CONF
lab_bg wan danted-v6 danted -f "$LAB_DIR/danted-v6.conf" -p "$LAB_DIR/danted-v6.pid" -N 1
lab_wait_port wan $S6 1080 && lab_wait_port wan $H6 8888 && lab_wait_port wan $D6 1080 || exit 1
check_fails "the proxies do not listen on IPv4" lab_exec wan bash -c "exec 3<>/dev/tcp/198.51.100.40/1080"
$ctl settings set health_interval 2 >/dev/null
$ctl settings set health_timeout 1 >/dev/null
export PGW_JWT_SECRET=lab-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080
printf 'admin-password-1\n' | $ctl user add admin --role admin --password-stdin >/dev/null
chmod a+rw "$PGW_DB"*
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
lab_bg gw pgw-healthd "$PGW_BIN/pgw-healthd"
lab_bg gw pgw-agent "$PGW_BIN/pgw-agent"
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
# only now: a root daemon has made the DB's -wal and -shm files, which nobody could not create in
# the lab directory (root's, 755); first to open the DB, the forwarder failed to start (a CI run
# under load saw it)
lab_bg gw pgw-forwarder setpriv --reuid=nobody --regid=nogroup --clear-groups "$PGW_BIN/pgw-forwarder"
check "forwarder (as nobody) listening" wait_for 5 grep -q 'listening on port' "$LAB_DIR/pgw-forwarder.log"

API=http://127.0.0.1:8080/api/v1
apij() { lab_exec gw curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
TOKEN=$(lab_exec gw curl -s -H 'Content-Type: application/json' -d '{"username":"admin","password":"admin-password-1"}' "$API/auth/login" | jq -r .token)
out=$(apij -d "{\"name\":\"bracketed\",\"type\":\"socks5\",\"host\":\"[$S6]\",\"port\":1080}" "$API/proxies")
check_match "host in brackets: 400 with the reason" "$(jq -r .error.message <<<"$out")" "no brackets, no port"
out=$(apij -d '{"name":"with-port","type":"socks5","host":"198.51.100.40:1080","port":1080}' "$API/proxies")
check_match "host:port: 400, the port goes in 'port'" "$(jq -r .error.message <<<"$out")" "the port goes in 'port'"
out=$(apij -d '{"name":"zone","type":"socks5","host":"fe80::1%eth0","port":1080}' "$API/proxies")
check_eq "an address with a zone: 400" "$(jq -r .error.code <<<"$out")" bad_request
check_eq "nothing was stored" "$(db "SELECT count(*) FROM proxies")" 0
out=$(apij -d "{\"name\":\"socks-v6\",\"type\":\"socks5\",\"host\":\"2001:DB8:100:0:0::40\",\"port\":1080,\"username\":\"$LAB_PROXY_USER\",\"password\":\"$LAB_PROXY_PASS\"}" "$API/proxies")
check_eq "POST a proxy at an IPv6 address: stored in canonical form" "$(jq -r .host <<<"$out")" "$S6"
S_ID=$(jq -r .id <<<"$out")
out=$(apij -d "{\"name\":\"http-v6\",\"type\":\"http\",\"host\":\"$H6\",\"port\":8888,\"username\":\"$LAB_PROXY_USER\",\"password\":\"$LAB_PROXY_PASS\"}" "$API/proxies")
H_ID=$(jq -r .id <<<"$out")
out=$(apij -X PATCH -d '{"host":"2001:0db8:0100::0042"}' "$API/proxies/$H_ID")
check_eq "PATCH spelled another way: canonical again" "$(jq -r .host <<<"$out")" "$H6"
out=$(apij -d "{\"name\":\"dante-v6\",\"type\":\"socks5\",\"host\":\"$D6\",\"port\":1080}" "$API/proxies")
D_ID=$(jq -r .id <<<"$out")

check "healthd: the three IPv6 proxies up" \
	wait_for 10 bash -c "[ \$(sqlite3 $PGW_DB \"SELECT count(*) FROM proxy_health WHERE status = 'up'\") = 3 ]"
check_eq "healthd: the exit IPs (each proxy's own IPv4 address, seen by the lab's web server)" \
	"$(db "SELECT group_concat(exit_ip, ' ') FROM (SELECT exit_ip FROM proxy_health ORDER BY proxy_id)")" "198.51.100.40 198.51.100.42 198.51.100.44"

db "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', $S_ID), ('192.168.2.11', $H_ID), ('fd00:2::12', $D_ID)"
$ctl notify mappings >/dev/null
check "agent: the clients are active" \
	wait_for 5 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -q 192.168.2.11 && ip netns exec $(lab_ns gw) nft list set inet pgw active6 | grep -q fd00:2::12"
check_eq "an IPv4 client through the SOCKS5 proxy at an IPv6 address" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" 198.51.100.40
check_eq "an IPv4 client through the HTTP proxy at an IPv6 address" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.11 http://$LAB_WEB/ip)" 198.51.100.42
check_eq "an IPv6 client through dante at an IPv6 address (nginx sees dante's IPv6 address)" \
	"$(lab_exec lan curl -sS -m 5 --interface fd00:2::12 "http://[$LAB_WEB6]/ip")" $D6
check_match "the forwarder's access log: done, via proxy $S_ID" \
	"$(grep '"conn client=192.168.2.10' "$LAB_DIR/pgw-forwarder.log" | tail -1)" "proxy=$S_ID .*close=done"

# strict_output: the gateway reaches the IPv6 proxies only through proxies6
gw=$(lab_ns gw)
curl_rc() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; echo $rc; }
as_nobody() { lab_exec gw setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
check_eq "strict_output off: root on the gateway reaches the IPv6 proxy" \
	"$(lab_exec gw curl -s -m 3 --socks5 "[$S6]:1080" -U $LAB_PROXY_USER:$LAB_PROXY_PASS http://$LAB_WEB/ip)" 198.51.100.40
check_eq "strict_output off: a closed port on the proxy host is refused at once (curl exit 7)" \
	"$(curl_rc as_nobody curl -s -m 2 "http://[$S6]:8888/")" 7
$ctl settings set strict_output true >/dev/null
check "strict_output: both IPv6 proxies' address . port in proxies6" \
	wait_for 3 bash -c "ip netns exec $gw nft list set inet pgw proxies6 | grep -q '$S6 . 1080' && ip netns exec $gw nft list set inet pgw proxies6 | grep -q '$H6 . 8888'"
check_eq "strict_output: proxies4 is empty" "$(ip netns exec $gw nft -j list set inet pgw proxies4 | jq '[.nftables[].set.elem // empty] | length')" 0
check_eq "strict_output: a client is still relayed (the forwarder, as the service user, reaches [$S6]:1080)" \
	"$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)" 198.51.100.40
check_eq "strict_output: root cannot reach the IPv6 proxy (dropped: curl times out, exit 28)" \
	"$(curl_rc lab_exec gw curl -s -m 2 --socks5 "[$S6]:1080" -U $LAB_PROXY_USER:$LAB_PROXY_PASS http://$LAB_WEB/ip)" 28
check_eq "strict_output: the service user cannot reach another port of it (dropped, exit 28)" \
	"$(curl_rc as_nobody curl -s -m 2 "http://[$S6]:8888/")" 28
$ctl settings set strict_output false >/dev/null

# the health URL may name an IPv6 address
out=$($ctl settings set health_url "http://2001:db8:203::10/ip" 2>&1)
check_match "health_url with an unbracketed IPv6 address: refused with the form to use" "$out" "\[an IPv6 address\]"
check "health_url http://[IPv6]:80/ip accepted" $ctl settings set health_url "http://[$LAB_WEB6]:80/ip"
check "healthd: dante up, its exit IP now its own IPv6 address (from the IPv6 URL)" \
	wait_for 10 bash -c "[ \"\$(sqlite3 $PGW_DB \"SELECT status || ' ' || exit_ip FROM proxy_health WHERE proxy_id = $D_ID\")\" = 'up $D6' ]"
finish
