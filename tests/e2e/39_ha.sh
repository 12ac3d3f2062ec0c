#!/usr/bin/env bash
# Scenario (issue 22): an HA pair. Two gateway namespaces (gw: node 1, gw2: node 2) on one LAN
# bridge and one WAN bridge, keepalived in each (ha/keepalived.conf.example with this lab's
# addresses, its check script and notify hook), the clients routing through the virtual address.
# Node 2 starts with an empty DB and bootstraps from the master, users included; a mapping added
# on the master is enforced in node 2's kernel within 1 s; the backup's API refuses writes naming
# the master; `pgwctl ha status` and /metrics tell role, peer, generation and lag; a proxy down
# as seen from node 2's WAN keeps its client blocked there. Ten failovers (the master's
# processes SIGKILLed and its LAN link down): clients' new connections work through the other
# node within 3 s (p50 and max printed), the old master returns as backup and stays so. A split
# brain (VRRP cut on the LAN switch): both nodes master, both enforce. Through all of it the WAN
# switch sees 0 packets from a client address.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
command -v keepalived >/dev/null || { echo "not ok 1 - keepalived is installed (scripts/deps.sh)"; echo "1..1"; exit 1; }
lab_ha_up || exit 1
lab_start_peers || exit 1
ctl=$PGW_BIN/pgwctl
J='Content-Type: application/json'
C1=192.168.2.10 C2=192.168.2.11 C3=192.168.2.12
export PGW_JWT_SECRET=lab-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=0.0.0.0:8080 PGW_LOG_FORMAT=json
export PGW_WEB_DIR=$ROOT/web PGW_HEALTH_URL=http://$LAB_WEB/ip PGW_LAN_IFACE=ens19 PGW_WAN_IFACE=eth0 PGW_HA_SECRET_FILE=$LAB_DIR/ha.secret
head -c 48 /dev/urandom | base64 -w0 >"$LAB_DIR/ha.secret"
chmod 600 "$LAB_DIR/ha.secret"

ns_of() { [ "$1" = 1 ] && echo gw || echo gw2; }
mac_of() { ip -n "$(lab_ns "$(ns_of "$1")")" -br link show ens19 | awk '{print $3}'; }
# node N's own variables (its DB, run dir, and its peer's LAN address)
node_env() { echo "PGW_DB=$LAB_DIR/n$1/pgw.db PGW_RUN_DIR=$LAB_DIR/n$1/run PGW_HA_PEER=${LAB_HA_ADDR[$((2 - $1))]}"; }
nctl() { local n=$1; shift; env $(node_env "$n") "$ctl" "$@"; }
ndb() { local n=$1; shift; sqlite3 "$LAB_DIR/n$n/pgw.db" "$@"; }
role() { ndb "$1" "SELECT role FROM ha_state"; }
napi() { # node method path [curl args]: "<status> <body>" from pgw-api in that node's namespace
	local n=$1 m=$2 p=$3
	shift 3
	lab_exec "$(ns_of "$n")" curl -s -m 10 -o "$LAB_DIR/api-body-$n" -w '%{http_code}' -X "$m" "$@" "http://127.0.0.1:8080$p"
	printf ' '
	cat "$LAB_DIR/api-body-$n"
}
has_vip() { ip -n "$(lab_ns "$(ns_of "$1")")" -br addr show ens19 | grep -q " $LAB_HA_VIP/"; }

for n in 1 2; do
	mkdir -p "$LAB_DIR/n$n"
	env $(node_env $n) "$ctl" migrate >/dev/null
	# keepalived's configuration: the shipped example with this node's addresses, priority, and
	# the check script and notify hook run with this node's environment
	sed -e "s|router_id pgw-gw1|router_id pgw-gw$n|" -e "s|priority 150|priority $((n == 1 ? 150 : 100))|" \
		-e "s|unicast_src_ip 192.168.2.2|unicast_src_ip ${LAB_HA_ADDR[$((n - 1))]}|" \
		-e "s|^        192.168.2.3\$|        ${LAB_HA_ADDR[$((2 - n))]}|" \
		-e "s|/usr/share/pgw/ha/pgw-ha-check notify|$LAB_DIR/n$n/notify|" \
		-e "s|/usr/share/pgw/ha/pgw-ha-check|$LAB_DIR/n$n/check|" "$ROOT/ha/keepalived.conf.example" >"$LAB_DIR/n$n/keepalived.conf"
	node_env $n | tr ' ' '\n' >"$LAB_DIR/n$n/pgw.env"
	# keepalived runs these every second or at a transition; a node's power cut (kill_node) or
	# the lab's end may SIGKILL one in the middle of a sanitized pgwctl's leak check at exit, which
	# then reports "Unable to get registers": no leak check for them (nctl's pgwctl keeps its own)
	printf '#!/bin/sh\nexport ASAN_OPTIONS=%s\nPGW_ENV_FILE=%s PGWCTL=%s exec %s\n' "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		"$LAB_DIR/n$n/pgw.env" "$ctl" "$ROOT/ha/pgw-ha-check" >"$LAB_DIR/n$n/check"
	printf '#!/bin/sh\nexport ASAN_OPTIONS=%s\necho "$(date +%%s.%%N) $*" >>%s\nPGW_ENV_FILE=%s PGWCTL=%s exec %s notify "$@"\n' \
		"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$LAB_DIR/notify-$n.log" "$LAB_DIR/n$n/pgw.env" "$ctl" \
		"$ROOT/ha/pgw-ha-check" >"$LAB_DIR/n$n/notify"
	chmod 755 "$LAB_DIR/n$n/check" "$LAB_DIR/n$n/notify"
done
check "the example configuration passes keepalived -t (node 1)" \
	lab_exec gw keepalived -t -f "$LAB_DIR/n1/keepalived.conf"

# the master's configuration: proxies, clients, a user, fast health checks
ndb 1 "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
	INSERT INTO mappings (client_ip, proxy_id) VALUES ('$C1', 1), ('$C2', 2), ('$C3', 3)"
for kv in "health_interval 1" "health_down_interval 1" "health_timeout 1" "health_success_threshold 1"; do
	nctl 1 settings set $kv >/dev/null
done
echo 'admin-password-1' | nctl 1 user add admin --role admin --password-stdin >/dev/null

start_node() { # N: pgw's four daemons, then keepalived
	local n=$1 g
	g=$(ns_of "$n")
	for d in healthd agent forwarder api; do lab_bg "$g" "pgw-$d-$n" env $(node_env "$n") "$PGW_BIN/pgw-$d"; done
	lab_bg "$g" "keepalived-$n" keepalived -n -l -G -D -P -f "$LAB_DIR/n$n/keepalived.conf" \
		-p "$LAB_DIR/n$n/keepalived.pid" -r "$LAB_DIR/n$n/vrrp.pid"
}
# A node dies: its LAN link down, then every process in its namespace SIGKILLed (a power cut:
# link first, so no process gets to say goodbye — keepalived's VRRP child, told of its parent's
# death, would otherwise send a priority-0 advert and hand over early). Its nftables ruleset stays
# in its kernel, as it would until a reboot.
kill_node() {
	local n=$1 ns pid
	ns=$(lab_ns "$(ns_of "$n")")
	ip -n "$ns" link set ens19 down
	exec 3>&2 2>/dev/null # bash reports each killed background job: not worth a line in the log
	for pid in $(ip netns pids "$ns"); do kill -KILL "$pid"; done
	for pid in $(awk -v s="-$n" 'substr($2, length($2) - 1) == s {print $1}' "$LAB_DIR/pids"); do wait "$pid"; done
	exec 2>&3 3>&-
	grep -v -- "-$n\$" "$LAB_DIR/pids" >"$LAB_DIR/pids.new"
	mv "$LAB_DIR/pids.new" "$LAB_DIR/pids"
}
# ...and comes back: link up, the address keepalived held gone (as after a reboot), restarted.
revive_node() {
	local n=$1 ns
	ns=$(lab_ns "$(ns_of "$n")")
	ip -n "$ns" addr del "$LAB_HA_VIP/24" dev ens19 2>/dev/null
	rm -f "$LAB_DIR/n$n"/*.pid # keepalived's pid files (/run empties at a reboot)
	ip -n "$ns" link set ens19 up
	start_node "$n"
}
in_sync() { # node: a backup holding the master's generation, lag 0
	local s
	s=$(nctl "$1" ha status --json) || return 1
	[ "$(jq -r '"\(.role) \(.lag)"' <<<"$s")" = "backup 0" ]
}

# a control first: before pgw runs, a client's packet that node 1 forwards reaches the WAN switch
# and this capture sees it (so the 0 at the end says something)
lab_bg wan tcpdump-ctl tcpdump -i wan0 -n -U --immediate-mode -w "$LAB_DIR/wan-ctl.pcap" 'src net 192.168.2.0/24'
ctl_pid=$LAB_LAST_PID
wait_for 5 grep -q 'listening on' "$LAB_DIR/tcpdump-ctl.log" || echo "# the control's tcpdump did not start"
lab_exec lan ip neigh replace "$LAB_HA_VIP" lladdr "$(mac_of 1)" dev lan0 nud permanent
lab_exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$C1', 0))
s.sendto(b'control', ('$LAB_WEB', 9))"
sleep 0.3
lab_exec lan ip neigh del "$LAB_HA_VIP" dev lan0
lab_stop_pid "$ctl_pid"
check "control: with no pgw yet, a client's packet forwarded by node 1 is seen on the WAN switch ($(lab_pcap_count "$LAB_DIR/wan-ctl.pcap"))" \
	test "$(lab_pcap_count "$LAB_DIR/wan-ctl.pcap")" -ge 1

# every packet from a client address that reaches the WAN switch
lab_bg wan tcpdump-wan tcpdump -i wan0 -n -U --immediate-mode -w "$LAB_DIR/wan.pcap" 'src net 192.168.2.0/24'
wait_for 5 grep -q 'listening on' "$LAB_DIR/tcpdump-wan.log" || { echo "Bail out! tcpdump on the WAN switch did not start"; exit 1; }

start_node 1
check "node 1 becomes master and holds the virtual address" wait_for 20 bash -c "[ \"\$(sqlite3 '$LAB_DIR/n1/pgw.db' 'SELECT role FROM ha_state')\" = master ] && ip -n $(lab_ns gw) -br addr show ens19 | grep -q ' $LAB_HA_VIP/'"
start_node 2
check "node 2 becomes backup" wait_for 20 bash -c "[ \"\$(sqlite3 '$LAB_DIR/n2/pgw.db' 'SELECT role FROM ha_state')\" = backup ]"
check "node 2, started with an empty DB, bootstraps from the master within 3 s" wait_for 3 in_sync 2
check_eq "... users included (node 2's users, proxies, mappings)" \
	"$(ndb 2 "SELECT (SELECT group_concat(username) FROM users), (SELECT count(*) FROM proxies), (SELECT count(*) FROM mappings)")" "admin|3|3"
check_eq "... and the settings" "$(ndb 2 "SELECT value FROM settings WHERE key = 'health_interval'")" 1
st=$(nctl 2 ha status)
echo "$st" | sed 's/^/# node 2: /'
g1=$(ndb 1 "SELECT generation FROM ha_state")
check_match "pgwctl ha status: role, peer, generation, lag (one key: value a line)" "$st" \
	"^role: backup
peer: ${LAB_HA_ADDR[0]}
generation: $g1
lag: 0.0"
check_eq "pgwctl ha status --json" "$(nctl 2 ha status --json | jq -c '[.role, .peer, .generation, .lag]')" "[\"backup\",\"${LAB_HA_ADDR[0]}\",$g1,0]"
check_match "... on the master" "$(nctl 1 ha status)" "^role: master
peer: ${LAB_HA_ADDR[1]}"
check "both nodes' pgw-api listening" wait_for 10 bash -c "grep -q 'listening on http' '$LAB_DIR/pgw-api-1.log' && grep -q 'listening on http' '$LAB_DIR/pgw-api-2.log'"
tok=$(napi 2 POST /api/v1/auth/login -H "$J" -d '{"username":"admin","password":"admin-password-1"}' | cut -d' ' -f2- | jq -r .token)
check_match "the synced admin logs in on the backup" "$tok" '^ey'
A="Authorization: Bearer $tok"
check_match "/metrics on the backup: pgw_ha_role, pgw_ha_generation, pgw_ha_lag_seconds" \
	"$(napi 2 GET /metrics -H "$A" | grep '^pgw_ha_' | tr '\n' ' ')" \
	"pgw_ha_role\{role=\"master\"\} 0 pgw_ha_role\{role=\"backup\"\} 1 .*pgw_ha_generation $g1 pgw_ha_lag_seconds 0.000"
check_match "GET /api/v1/ha on the backup" "$(napi 2 GET /api/v1/ha -H "$A")" \
	"^200 .*\"role\": *\"backup\".*\"peer\": *\"${LAB_HA_ADDR[0]}\""
(cd "$ROOT/tests/web" && MASTER_URL=http://${LAB_HA_ADDR[0]}:8080/ BACKUP_URL=http://127.0.0.1:8080/ \
	MASTER_ADDR=${LAB_HA_ADDR[0]} ADMIN_PASSWORD=admin-password-1 \
	MASTER_CHANGE="echo ha-viewer-password-1 | env $(node_env 1) $ctl user add ha-viewer --role viewer --password-stdin >/dev/null" timeout 120 ip netns exec "$(lab_ns gw2)" node ha.mjs) >"$LAB_DIR/ha-web.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/ha-web.out"
check "the dashboards show the pair: the backup read-only naming the master, following it live (Chromium, $(grep -c '^ok' "$LAB_DIR/ha-web.out") browser checks)" test $rc -eq 0
check_match "a write to the backup's API: 503 naming the master's address" \
	"$(napi 2 POST /api/v1/mappings -H "$A" -H "$J" -d '{"client_ip":"192.168.2.20","proxy_id":1}')" \
	"^503 .*ha_backup.*master at ${LAB_HA_ADDR[0]}"
check_match "a logout on the backup: 503 naming the master (a logout there ended nothing: the master's next sync set it back)" \
	"$(napi 2 POST /api/v1/auth/logout -H "$A" -H "$J" -d '{}')" "^503 .*ha_backup.*log out on the master at ${LAB_HA_ADDR[0]}"
# the sync's request MAC, made here with openssl from the secret file: t, nonce, origin, generation
ha_mac() { # t nonce origin generation [secret]
	local key
	key=$(printf 'pgw-ha auth v1' | openssl dgst -sha256 -mac HMAC -macopt "key:${5:-$(cat "$LAB_DIR/ha.secret")}" -binary | od -An -v -tx1 | tr -d ' \n')
	printf '%s\n%s\n%s\n%s' "$1" "$2" "$3" "$4" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" | awk '{print $NF}'
}
sync_req() { # t mac: the peer asks the master for everything (origin 00, generation 0)
	lab_exec gw2 curl -s -m 8 -o "$LAB_DIR/sync-body" -w '%{http_code} %{content_type}' \
		"http://${LAB_HA_ADDR[0]}:8080/api/v1/ha/sync?origin=00&generation=0" -H "X-Pgw-Ha: t=$1,n=$NONCE,m=$2"
}
NONCE=0123456789abcdef0123456789abcdef
now=$(date +%s)
check_match "a sync request from the peer with the pair's MAC: 200, a sealed body" \
	"$(sync_req "$now" "$(ha_mac "$now" $NONCE 00 0)")" '^200 application/octet-stream'
check "... that holds no readable configuration (no password hash, no proxy password; $(wc -c <"$LAB_DIR/sync-body") bytes)" \
	bash -c "[ \$(wc -c <'$LAB_DIR/sync-body') -gt 500 ] && ! grep -aq -e argon2id -e '$LAB_PROXY_PASS' -e socks-auth '$LAB_DIR/sync-body'"
check_match "a MAC under another secret: 401" \
	"$(sync_req "$now" "$(ha_mac "$now" $NONCE 00 0 another-secret-0123456789abcdef0123456789)"; echo; cat "$LAB_DIR/sync-body")" '^401 .*does not authenticate'
check_match "the pair's MAC over another generation (a request altered on the way): 401" \
	"$(sync_req "$now" "$(ha_mac "$now" $NONCE 00 7)")" '^401 '
check_match "a request two minutes old, its MAC right: 401 (clocks must agree)" \
	"$(sync_req $((now - 120)) "$(ha_mac $((now - 120)) $NONCE 00 0)"; echo; cat "$LAB_DIR/sync-body")" "^401 .*time is more than 60 s off"
check_match "... and from an address that is not the peer's: 404" \
	"$(lab_exec gw curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:8080/api/v1/ha/sync?origin=00&generation=0")" '^404$'

# clients through the virtual address
via() { lab_exec lan curl -s -m "${2:-2}" --interface "$1" "http://$LAB_WEB/ip"; }
check "all three proxies up on both nodes (each probes through its own WAN)" wait_for 15 bash -c \
	"[ \"\$(sqlite3 '$LAB_DIR/n1/pgw.db' \"SELECT count(*) FROM proxy_health WHERE status = 'up'\")\" = 3 ] && [ \"\$(sqlite3 '$LAB_DIR/n2/pgw.db' \"SELECT count(*) FROM proxy_health WHERE status = 'up'\")\" = 3 ]"
check_eq "a client reaches the web through the virtual address (exit: its proxy)" "$(via $C1)" "$LAB_SOCKS_AUTH"

# a mapping added on the master is enforced in the backup's kernel within 1 s
in_set() { ip netns exec "$(lab_ns "$(ns_of "$1")")" nft list set inet pgw active4 2>/dev/null | grep -qw "$2"; }
# node ip: active, blocked (in that set of the node's kernel) or "neither" (nft failed, say)
kstate() {
	local ns a b
	ns=$(lab_ns "$(ns_of "$1")")
	a=$(ip netns exec "$ns" nft list set inet pgw active4 2>/dev/null) &&
		b=$(ip netns exec "$ns" nft list set inet pgw blocked4 2>/dev/null) || { echo neither; return; }
	if grep -qw "$2" <<<"$a"; then echo active
	elif grep -qw "$2" <<<"$b"; then echo blocked
	else echo neither; fi
}
ip netns exec "$(lab_ns gw)" nft list chain inet pgw lan_in | grep "${LAB_HA_ADDR[1]}" | sed 's/^/# node 1 lan_in: /'
check "the agents' lan_in accepts VRRP (protocol 112) from the peer's address" bash -c \
	"ip netns exec $(lab_ns gw) nft list chain inet pgw lan_in | grep -Eq 'ip saddr ${LAB_HA_ADDR[1]} .*(vrrp|112) accept' && ip netns exec $(lab_ns gw2) nft list chain inet pgw lan_in | grep -Eq 'ip saddr ${LAB_HA_ADDR[0]} .*(vrrp|112) accept'"
A1="Authorization: Bearer $(napi 1 POST /api/v1/auth/login -H "$J" -d '{"username":"admin","password":"admin-password-1"}' | cut -d' ' -f2- | jq -r .token)"
# timed from the master's answer (its health gate probes the proxy before it answers)
out=$(napi 1 POST /api/v1/mappings -H "$A1" -H "$J" -d '{"client_ip":"192.168.2.13","proxy_id":2}')
t0=$(lab_ms)
check_match "the master maps 192.168.2.13 (API)" "$out" '^201 '
wait_for 3 in_set 2 192.168.2.13
t_enf=$(($(lab_ms) - t0))
echo "# the new mapping enforced in node 2's kernel ${t_enf} ms after the master's API answered"
check "... enforced on the backup within 1 s (${t_enf} ms)" test "$t_enf" -le 1000 -a "$(in_set 2 192.168.2.13 && echo y)" = y

# a proxy that is down as seen from node 2's WAN keeps its client blocked there
lab_exec wan nft -f - <<EOF
table ip labcut {
	chain c {
		type filter hook input priority 0
		ip saddr ${LAB_HA_WAN[1]} ip daddr $LAB_HTTP_PROXY tcp dport 8888 drop
	}
}
EOF
t0=$(lab_ms)
if ! check "node 2 sees the http proxy down (its WAN cannot reach it)" wait_for 10 bash -c \
	"[ \"\$(sqlite3 '$LAB_DIR/n2/pgw.db' 'SELECT status FROM proxy_health WHERE proxy_id = 3')\" = down ]"; then
	ndb 2 "SELECT * FROM proxy_health WHERE proxy_id = 3" | sed 's/^/# node 2 health: /'
	grep -e 'proxy 3' -e probing -e settings "$LAB_DIR/pgw-healthd-2.log" | tail -20 | sed 's/^/# node 2 healthd: /'
	lab_exec wan nft list table ip labcut | grep drop | sed 's/^/# wan: /'
fi
echo "# node 2 saw it down $(($(lab_ms) - t0)) ms after the WAN cut"
c3_split() { [ "$(kstate 2 $C3) $(kstate 1 $C3)" = "blocked active" ]; }
wait_for 2 c3_split # node 2's agent acts on the status it just stored
check_eq "... its client ($C3) is blocked on node 2, active on node 1" "$(kstate 2 $C3) $(kstate 1 $C3)" "blocked active"

# ten failovers: kill the master, time until a client's new connection works again
link_up() { [ -n "$(ip -n "$(lab_ns "$(ns_of "$1")")" link show ens19 up)" ]; }
master() { for n in 1 2; do [ "$(role $n)" = master ] && has_vip $n && link_up $n && { echo $n; return 0; }; done; return 1; }
times=()
for trial in $(seq 1 10); do
	m=$(master) || { echo "# trial $trial: no master"; break; }
	b=$((3 - m))
	wait_for 10 in_sync $b || echo "# trial $trial: node $b not in sync before the kill"
	t0=$(lab_ms)
	kill_node "$m"
	until via $C1 0.4 >/dev/null; do [ $(($(lab_ms) - t0)) -lt 10000 ] || break; done
	times+=($(($(lab_ms) - t0)))
	echo "# trial $trial: node $m killed, a new connection worked after ${times[-1]} ms (via node $(master))"
	if [ "$trial" = 1 ]; then
		check_fails "node 2 master: $C3 gets nothing (its proxy is down as node 2 sees it)" via $C3 2
	fi
	revive_node "$m"
	wait_for 15 in_sync "$m" || echo "# trial $trial: node $m did not come back as a synced backup"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
p50=$(sed -n "$(((${#times[@]} + 1) / 2))p" <<<"$sorted")
max=$(tail -1 <<<"$sorted")
echo "# failover, a client's new connection working again: p50 ${p50} ms, max ${max} ms over ${#times[@]} trials"
check "ten failovers: new connections work through the other node within 3 s (p50 ${p50} ms, max ${max} ms)" \
	test "${#times[@]}" = 10 -a "${max:-99999}" -le 3000
m=$(master)
b=$((3 - m))
A1="Authorization: Bearer $(napi "$m" POST /api/v1/auth/login -H "$J" -d '{"username":"admin","password":"admin-password-1"}' | cut -d' ' -f2- | jq -r .token)"
napi "$m" POST /api/v1/mappings -H "$A1" -H "$J" -d '{"client_ip":"192.168.2.14","proxy_id":1}' >/dev/null
check "after the failovers, a mapping added on the new master (node $m) reaches the old one within 1 s" \
	wait_for 1 bash -c "[ \"\$(sqlite3 '$LAB_DIR/n$b/pgw.db' \"SELECT count(*) FROM mappings WHERE client_ip = '192.168.2.14'\")\" = 1 ]"
tr0=$(ndb "$m" "SELECT transitions FROM ha_state")
sleep 3
check_eq "the old master came back as backup and stays so (no flapping in 3 s)" \
	"$(role $b) $(role $m) $(ndb "$m" "SELECT transitions FROM ha_state")" "backup master $tr0"
check_eq "node 2 still blocks $C3 (the http proxy is down from its WAN)" "$(kstate 2 $C3)" blocked

# split brain: VRRP cut on the LAN switch, both nodes master, both enforce
lab_exec lan nft -f - <<EOF
table bridge labcut {
	chain c {
		type filter hook forward priority 0
		ip protocol 112 drop
	}
}
EOF
check "VRRP cut: both nodes become master" wait_for 10 bash -c \
	"[ \"\$(sqlite3 '$LAB_DIR/n1/pgw.db' 'SELECT role FROM ha_state')\$(sqlite3 '$LAB_DIR/n2/pgw.db' 'SELECT role FROM ha_state')\" = mastermaster ]"
ok=0
for _ in $(seq 1 10); do via $C1 1 >/dev/null && ok=$((ok + 1)); via $C2 1 >/dev/null && ok=$((ok + 1)); done
echo "# split brain: $ok of 20 client connections worked"
check "... both enforce (each holds the full ruleset: table inet pgw with the clients)" \
	bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw active4 | grep -qw $C1 && ip netns exec $(lab_ns gw2) nft list set inet pgw active4 | grep -qw $C1"
# each node on its own: the clients' neighbour entry for the virtual address pinned to one node's MAC
pin() { lab_exec lan ip neigh replace "$LAB_HA_VIP" lladdr "$(mac_of "$1")" dev lan0 nud permanent; }
pin 1
check_eq "... through node 1 alone: $C1 relays through its proxy" "$(via $C1)" "$LAB_SOCKS_AUTH"
c3=$(via $C3)
check "... and so does $C3 (${c3:-nothing}; its proxy is up from node 1's WAN)" test -n "$c3" -a "$c3" != "$C3"
pin 2
check_eq "... through node 2 alone: $C1 relays through its proxy" "$(via $C1)" "$LAB_SOCKS_AUTH"
check_fails "... and node 2 blocks $C3 (its proxy is down from node 2's WAN)" via $C3 2
lab_exec lan ip neigh del "$LAB_HA_VIP" dev lan0
lab_exec lan nft delete table bridge labcut
check "VRRP back: one master again (and one backup)" wait_for 10 bash -c \
	"case \"\$(sqlite3 '$LAB_DIR/n1/pgw.db' 'SELECT role FROM ha_state')\$(sqlite3 '$LAB_DIR/n2/pgw.db' 'SELECT role FROM ha_state')\" in masterbackup | backupmaster) ;; *) exit 1 ;; esac"
r1=$(role 1) r2=$(role 2) t1=$(ndb 1 "SELECT transitions FROM ha_state") t2=$(ndb 2 "SELECT transitions FROM ha_state")
version() { ndb "$1" "SELECT origin || ':' || generation FROM ha_state"; }
same_version() { [ "$(version 1)" = "$(version 2)" ]; }
check "... and the backup holds the master's configuration again within 3 s" wait_for 3 same_version
sleep 3
check_eq "... and it stays so (no flapping in 3 s)" "$(role 1) $(role 2) $(ndb 1 "SELECT transitions FROM ha_state") $(ndb 2 "SELECT transitions FROM ha_state")" "$r1 $r2 $t1 $t2"

lab_stop_pid "$(awk '$2 == "tcpdump-wan" {print $1}' "$LAB_DIR/pids")" # flushed and closed
leaks=$(lab_pcap_count "$LAB_DIR/wan.pcap" -e)
head -20 "$LAB_DIR/wan.pcap.txt" 2>/dev/null | sed 's/^/# leaked: /'
check_eq "0 client packets on the WAN through all of it (setup, 10 failovers, split brain)" "$leaks" 0
finish
