#!/usr/bin/env bash
# make demo: a whole gateway in a network-namespace lab, in the foreground until Ctrl-C,
# then everything it created is removed. Needs root (network namespaces).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
. "$ROOT/tests/lab.sh"

[ "$(id -u)" = 0 ] || { echo "make demo needs root (it builds network namespaces): sudo make demo" >&2; exit 1; }
say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "Building the lab (LAN clients, gateway, WAN with real proxies and a web server)..."
lab_up || exit 1
trap 'exit 0' INT # Ctrl-C is how the demo ends: clean up (EXIT trap) and report success
lab_start_peers || exit 1
lab_start_dns || exit 1 # the lab's DNS server (zone pgw.lab), reached only through the proxies
lab_start_dante || exit 1 # a SOCKS5 proxy that carries UDP too
lab_start_udp_echo 7777 || exit 1 # a UDP echo server on the lab internet
ip -n "$(lab_ns lan)" addr add 192.168.2.14/24 dev lan0 # one more client: a game console
export PGW_DB=$LAB_DIR/pgw.db PGW_RUN_DIR=$LAB_DIR/run PGW_LOG_FORMAT=text
export PGW_JWT_SECRET_FILE=$LAB_DIR/jwt.secret PGW_HEALTH_URL=http://$LAB_WEB/ip PGW_WEB_DIR=$ROOT/web
head -c 48 /dev/urandom | base64 | tr -d '\n' >"$PGW_JWT_SECRET_FILE"
chmod 600 "$PGW_JWT_SECRET_FILE"

"$BIN/pgwctl" migrate >/dev/null || exit 1
"$BIN/pgwctl" settings set health_interval 5 >/dev/null
"$BIN/pgwctl" settings set health_down_interval 2 >/dev/null
"$BIN/pgwctl" settings set health_timeout 2 >/dev/null
"$BIN/pgwctl" settings set dns_upstream "$LAB_DNS:53" >/dev/null
"$BIN/pgwctl" settings set dns_check_name "www.$LAB_ZONE" >/dev/null
"$BIN/pgwctl" settings set udp_check "$LAB_DNS:53" >/dev/null # which proxies carry UDP: asked through each
password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-16)
echo "$password" | "$BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null || exit 1

sqlite3 "$PGW_DB" <<SQL || exit 1
INSERT INTO proxies (name, type, host, port, username, password) VALUES
  ('socks-auth', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
  ('socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080, '', ''),
  ('http-auth', 'http', '$LAB_HTTP_PROXY', 8888, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
  ('broken', 'socks5', '198.51.100.99', 1080, '', ''),
  ('dante', 'socks5', '$LAB_DANTE', 1080, '', '');
INSERT INTO mappings (client_ip, proxy_id, label) VALUES
  ('192.168.2.10', 1, 'laptop'), ('192.168.2.11', 2, 'phone'),
  ('192.168.2.12', 3, 'tv'), ('192.168.2.13', 4, 'printer (broken proxy)'), ('192.168.2.14', 5, 'game console');
SQL

say "Starting the daemons..."
for d in healthd agent forwarder; do lab_bg gw "pgw-$d" "$BIN/pgw-$d"; done
# pgw-api runs in the host namespace so the dashboard is reachable from the host.
"$BIN/pgw-api" >"$LAB_DIR/pgw-api.log" 2>&1 &
echo "$! pgw-api" >>"$LAB_DIR/pids"
sleep 1

# light client traffic so the numbers move: one request per client every 3 s, until Ctrl-C
(
	while :; do
		for c in "${LAB_CLIENTS[@]}"; do
			ip netns exec "$(lab_ns lan)" curl -s -m 2 --interface "$c" "http://$LAB_WEB/ip" >/dev/null 2>&1
		done
		sleep 3
	done
) &
echo "$! traffic" >>"$LAB_DIR/pids"
sleep 2
micro=$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")
lan=$(lab_ns lan)
ctl="$BIN/pgwctl --db $PGW_DB"

cat <<MSG

pgw demo is running (lab $LAB_ID).
  Dashboard:             http://127.0.0.1:8080/  (user admin, password $password)
  REST API:              http://127.0.0.1:8080/api/v1
  state:                 $ctl status

Clients (namespace $lan) and their proxies:
  192.168.2.10 -> socks-auth (microsocks, user/password)    192.168.2.11 -> socks-open (microsocks)
  192.168.2.12 -> http-auth  (tinyproxy, Basic auth)        192.168.2.13 -> broken (nothing there)
  192.168.2.14 -> dante      (SOCKS5 with UDP ASSOCIATE: its UDP is relayed too)

Try:
  ip netns exec $lan curl --interface 192.168.2.10 http://$LAB_WEB/ip   # answers 198.51.100.10: the proxy's exit
  ip netns exec $lan curl --interface 192.168.2.13 http://$LAB_WEB/ip   # refused: its proxy is down
  ip netns exec $lan dig -b 192.168.2.10 @192.168.2.1 www.$LAB_ZONE     # DNS, resolved through 192.168.2.10's proxy
  ip netns exec $lan dig -b 192.168.2.12 @203.0.113.99 www.$LAB_ZONE    # any resolver address: the gateway answers
  grep 'from' $LAB_DIR/dnsmasq-queries.log | tail -3                    # the DNS server saw the proxies' exit addresses
  ip netns exec $lan python3 $ROOT/tests/e2e/udp_tool.py ping 192.168.2.14 $LAB_ECHO 7777 5   # UDP through dante
  cat $LAB_DIR/udp-echo-7777.log                                        # the echo server saw dante's address
  ip netns exec $lan python3 $ROOT/tests/e2e/udp_tool.py ping 192.168.2.10 $LAB_ECHO 7777 2   # lost: microsocks has no UDP
  sqlite3 $PGW_DB 'SELECT proxy_id, status, latency_ms, exit_ip, last_error FROM proxy_health'
  kill $micro     # stop socks-open: within seconds its badge turns down and 192.168.2.11 is blocked
  ip netns exec $(lab_ns gw) nft list table inet pgw                    # the kill switch itself

  TOKEN=\$(curl -s http://127.0.0.1:8080/api/v1/auth/login -H 'Content-Type: application/json' \\
          -d '{"username":"admin","password":"$password"}' | jq -r .token)
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v1/mappings | jq
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v1/health | jq

Logs: $LAB_DIR/pgw-*.log (followed below). Press Ctrl-C to stop; everything is removed.
MSG
tail -n 0 -F "$LAB_DIR"/pgw-agent.log "$LAB_DIR"/pgw-healthd.log &
echo "$! tail" >>"$LAB_DIR/pids"
lab_wait_forever
