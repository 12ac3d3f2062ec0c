#!/usr/bin/env bash
# Scenario (issue 17, first part): pgw-healthd learns per proxy whether it carries UDP. dante
# (UDP ASSOCIATE allowed) carries a DNS query through its relay to dnsmasq and back: udp=yes, and
# dnsmasq saw it from dante's external address; microsocks refuses the command (REP 7): no, with
# the reason; an HTTP CONNECT proxy: no; dante with UDP ASSOCIATE blocked: no. The proxies stay
# up for TCP either way.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_start_dns || { echo "# dnsmasq failed to start"; exit 1; }
lab_start_dante || { echo "# dante failed to start"; exit 1; }
db() { sqlite3 "$PGW_DB" "$@"; }
ctl() { "$PGW_BIN/pgwctl" "$@" >/dev/null; }
ctl settings set health_interval 2
ctl settings set health_timeout 2
ctl settings set udp_check "$LAB_DNS:53"
ctl settings set dns_check_name "udpcheck.$LAB_ZONE"
check_fails "udp_check must be host:port" "$PGW_BIN/pgwctl" settings set udp_check "$LAB_DNS"
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
    INSERT INTO proxies (id, name, type, host, port) VALUES (4, 'dante', 'socks5', '$LAB_DANTE', 1080);"
lab_bg gw pgw-healthd "$PGW_BIN/pgw-healthd"
udp_of() { db "SELECT udp FROM proxy_health WHERE proxy_id = $1"; }
all_checked() { [ "$(db "SELECT group_concat(udp) FROM (SELECT udp FROM proxy_health ORDER BY proxy_id)")" = "no,no,no,yes" ]; }
check "pgw-healthd finds dante carries UDP, the others not" wait_for 10 all_checked
check_match "microsocks: no, UDP ASSOCIATE refused (command not supported)" \
	"$(db "SELECT udp_error FROM proxy_health WHERE proxy_id = 1")" "UDP ASSOCIATE: proxy_refused \(command not supported\)"
check_match "tinyproxy (HTTP CONNECT): no" "$(db "SELECT udp_error FROM proxy_health WHERE proxy_id = 3")" "HTTP CONNECT"
check_eq "every proxy stays up for TCP" "$(db "SELECT group_concat(status) FROM proxy_health")" "up,up,up,up"
check "dnsmasq got the check's datagram from dante's external address (through the relay)" \
	grep -q "query\[A\] udpcheck.$LAB_ZONE from $LAB_DANTE\$" "$LAB_DIR/dnsmasq-queries.log"
check_fails "... and never from the gateway" grep -q "from 198.51.100.1\$" "$LAB_DIR/dnsmasq-queries.log"
lab_api_env
export PGW_METRICS_TOKEN=lab-metrics-token-0123456789
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
lab_wait_port gw 127.0.0.1 8080 || exit 1
metrics=$(lab_exec gw curl -s -H "Authorization: Bearer $PGW_METRICS_TOKEN" http://127.0.0.1:8080/metrics)
check_match "/metrics: pgw_proxy_udp per proxy" "$metrics" 'pgw_proxy_udp\{proxy="socks-auth",id="1"\} 0.*pgw_proxy_udp\{proxy="dante",id="4"\} 1'
# dante that refuses UDP ASSOCIATE: after its restart, no
lab_stop_pid "$(awk '$2 == "danted" {print $1}' "$LAB_DIR/pids")"
LAB_DANTE_RULES="socks block { from: 0/0 to: 0/0 command: udpassociate }" lab_start_dante || exit 1
check "dante with UDP ASSOCIATE blocked: udp=no" wait_for 12 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT udp FROM proxy_health WHERE proxy_id = 4')\" = no ]"
check_eq "... still up for TCP" "$(db "SELECT status FROM proxy_health WHERE proxy_id = 4")" "up"
check_match "... and the reason is kept (dante refuses the command)" "$(db "SELECT udp_error FROM proxy_health WHERE proxy_id = 4")" "^UDP ASSOCIATE: proxy_refused"
finish
