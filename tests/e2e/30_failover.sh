#!/usr/bin/env bash
# Scenario (issue 18): who carries a client. Three proxies; client C1 maps to P1 with
# on_down=failover and the list [P2, P3], client C2 to the same P1 with on_down=block.
# P1 stops taking connections (new ones refused in the lab's "internet", so connections already
# open through it live on and only pgw can cut them): C1 moves to P2 within one health interval
# (figure), its exit IP follows, its download through P1 is cut at the switch; C2 stays blocked.
# P1 back: C1 returns only after P1 has been up for failover_hysteresis probes (4 here), and its
# download through P2 is cut then. P1 killed for real: C1 moves again. Each move is an SSE event,
# a log line and an audit row; mapping JSON shows carrying_proxy_id; 0 client packets on the WAN
# through every step. The health gate of a failover mapping, and its validation.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
J='Content-Type: application/json'
C1=192.168.2.10
C2=192.168.2.11
head -c 8M /dev/urandom >"$LAB_DIR/www/files/big.bin" # 32 s at 256 KiB/s
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES,
	(4, 'nowhere', 'socks5', '$LAB_SOCKS_NOAUTH', 1081, '', '')"
P1=2 P2=1 P3=3 DEAD=4 # P1 leaves from $LAB_SOCKS_NOAUTH, P2 from $LAB_SOCKS_AUTH, P3 from $LAB_HTTP_PROXY
$ctl settings set health_interval 1 >/dev/null
$ctl settings set health_down_interval 1 >/dev/null
$ctl settings set health_timeout 1 >/dev/null
$ctl settings set health_success_threshold 1 >/dev/null
$ctl settings set failover_hysteresis 4 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
body() { cut -d' ' -f2-; }
status_of() { lab_db "SELECT status FROM proxy_health WHERE proxy_id = $1"; }
check "the three proxies are up" wait_for 10 bash -c "[ \"\$(sqlite3 $PGW_DB \
	\"SELECT count(*) FROM proxy_health WHERE status = 'up'\")\" = 3 ]"

# ---- what a failover mapping may be
post() { lab_api POST /api/v1/mappings -H "$ADMIN" -H "$J" -d "$1"; }
check_match "on_down must be block or failover (400)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"retry\"}")" "^400 .*on_down"
check_match "the primary is not in its own failover list (400)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[$P2,$P1]}")" "^400 .*primary"
check_match "a proxy is not twice in the list (400)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[$P2,$P2]}")" "^400 .*twice"
check_match "a list of something else than proxy ids (400)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[\"$P2\"]}")" "^400 "
check_match "no more than 8 failover proxies (400)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[1,2,3,4,5,6,7,8,9]}")" "^400 "
check_match "an unknown proxy in the list (404)" \
	"$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[99]}")" "^404 .*99"
out=$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$DEAD,\"on_down\":\"failover\",\"failover_proxy_ids\":[]}")
check_match "the health gate: a failover mapping with no proxy up is refused (422)" "$out" "^422 .*proxy_down"
check_eq "... with each proxy's check" "$(body <<<"$out" | jq -c '[.error.checks[] | [.proxy_id, .status]]')" "[[$DEAD,\"down\"]]"
check_eq "... and nothing stored" "$(lab_db 'SELECT count(*) FROM mappings')" 0
out=$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$DEAD,\"on_down\":\"failover\",\"failover_proxy_ids\":[$P3]}")
check_match "a failover mapping whose primary is down but a listed proxy is up passes the gate (201)" "$out" "^201 "
check_eq "... carried by that proxy" "$(body <<<"$out" | jq -c '[.state, .carrying_proxy_id, .health.proxy_id]')" "[\"active\",$P3,$P3]"
check_match "... which the client's traffic leaves through" \
	"$(wait_for 10 bash -c "[ \"\$(ip netns exec $(lab_ns lan) curl -s -m 3 --interface $C1 http://$LAB_WEB/ip)\" = $LAB_HTTP_PROXY ]" && echo ok)" ok
M=$(body <<<"$out" | jq .id)
check_match "switching to on_down=block needs no gate: it only blocks (200)" \
	"$(lab_api PATCH /api/v1/mappings/$M -H "$ADMIN" -H "$J" -d '{"on_down":"block"}')" "^200 "
check_eq "... (on_down=block after the fact: blocked, carried by none)" \
	"$(lab_api GET /api/v1/mappings/$M -H "$ADMIN" | body | jq -c '[.state, .carrying_proxy_id, .failover_proxy_ids]')" \
	"[\"blocked\",null,[$P3]]"
check_match "a proxy in a failover list cannot be deleted (409)" \
	"$(lab_api DELETE /api/v1/proxies/$P3 -H "$ADMIN")" "^409 .*failover"
check_match "... and the mapping is deleted with its list" "$(lab_api DELETE /api/v1/mappings/$M -H "$ADMIN")" "^20[04] "
check_eq "... (no failover rows left)" "$(lab_db 'SELECT count(*) FROM mapping_failover')" 0

# ---- the two clients of P1
out=$(post "{\"client_ip\":\"$C1\",\"proxy_id\":$P1,\"on_down\":\"failover\",\"failover_proxy_ids\":[$P2,$P3],\"label\":\"fo\"}")
check_match "C1: failover mapping on P1, then P2, then P3 (201)" "$out" "^201 "
check_eq "... carried by its primary" \
	"$(body <<<"$out" | jq -c '[.on_down, .failover_proxy_ids, .carrying_proxy_id]')" "[\"failover\",[$P2,$P3],$P1]"
M1=$(body <<<"$out" | jq .id)
out=$(post "{\"client_ip\":\"$C2\",\"proxy_id\":$P1}")
check_eq "C2: a mapping on the same P1, on_down block by default" \
	"$(body <<<"$out" | jq -c '[.on_down, .failover_proxy_ids, .carrying_proxy_id]')" "[\"block\",[],$P1]"
M2=$(body <<<"$out" | jq .id)
exit_of() { lab_exec lan curl -s -m 3 --interface "$1" "http://$LAB_WEB/ip"; }
leaves() { [ "$(exit_of "$1")" = "$2" ]; }
check "C1 leaves from P1's address" wait_for 10 leaves $C1 $LAB_SOCKS_NOAUTH
check "C2 leaves from P1's address" wait_for 10 leaves $C2 $LAB_SOCKS_NOAUTH
carrier() { lab_api GET /api/v1/mappings/$1 -H "$ADMIN" | body | jq -r .carrying_proxy_id; }
carried_by() { [ "$(carrier "$1")" = "$2" ]; }
in_set() { lab_exec gw nft list set inet pgw active4 | grep -qw "$1"; }
# in the blocked set and not the active one (as the kernel lists them: a failed nft is no pass)
kernel_blocked() {
	local a b
	a=$(ip netns exec "$(lab_ns gw)" nft list set inet pgw active4) &&
		b=$(ip netns exec "$(lab_ns gw)" nft list set inet pgw blocked4) &&
		! grep -qw "$1" <<<"$a" && grep -qw "$1" <<<"$b"
}

lab_exec gw curl -s -N -m 90 -H "$ADMIN" http://127.0.0.1:8080/api/v1/events >"$LAB_DIR/sse.log" &
sse=$!
lab_capture_start failover || exit 1
download() { # client name: a long download in the background; $LAB_DIR/name.end says how it ended
	rm -f "$LAB_DIR/$2.end"
	lab_bg lan "$2" bash -c "curl -s -o /dev/null --interface $1 http://$LAB_WEB/slow/big.bin; \
		echo \$? > $LAB_DIR/$2.end"
}
relaying() { ip netns exec "$(lab_ns gw)" ss -Htn state established "( sport = :12345 )" | grep -q "$1:"; }
both_relaying() { relaying $C1 && relaying $C2; }
download $C1 dl1
download $C2 dl2
check "long downloads of C1 and C2 through P1 are under way" wait_for 5 both_relaying

# P1 refuses new connections (as a dead proxy does); those open through it live on. Matched by
# the SYN, not by "ct state new": conntrack starts in this namespace only with this rule, and
# when the next packet of the download already open is the forwarder's ACK, it takes that for a
# new connection and rejects it (a fresh-clone run saw the download reset 52 ms in, before the
# switch: close=upstream_reset, not close=revoked)
lab_exec wan nft -f - <<NFT
table inet pgwtest_fo {
	chain in { type filter hook input priority 0; ip daddr $LAB_SOCKS_NOAUTH tcp dport 1080 tcp flags & (syn | ack) == syn reject with tcp reset; }
}
NFT
t0=$(lab_ms)
check "C1 is carried by P2" wait_for 5 carried_by $M1 $P2
t1=$(lab_ms)
echo "# C1 moved to P2 $((t1 - t0)) ms after P1 stopped taking connections (health_interval 1 s)"
check "... within one health interval and the probe's timeout ($((t1 - t0)) ms < 2500)" test $((t1 - t0)) -lt 2500
check "... its exit follows: $LAB_SOCKS_AUTH" wait_for 5 leaves $C1 $LAB_SOCKS_AUTH
check "... its download through P1 is cut at the switch" wait_for 5 test -s "$LAB_DIR/dl1.end"
not_completed() { read -r rc <"$1" && [ "$rc" != 0 ]; }
check "... not completed (curl ended with an error)" not_completed "$LAB_DIR/dl1.end"
# the forwarder's line can come a little after curl saw the cut (the agent cuts the flow in the
# kernel too); a fresh-clone CI run failed here once without the wait
check "... by the forwarder (close=revoked)" wait_for 3 grep -q "client=$C1:[0-9]* .*close=revoked" "$LAB_DIR/pgw-forwarder.log"
grep -q "client=$C1:[0-9]* .*close=revoked" "$LAB_DIR/pgw-forwarder.log" || { # what did end it, for whoever reads the log
	echo "# dl1.end: $(cat "$LAB_DIR/dl1.end")"
	grep "client=$C1:" "$LAB_DIR/pgw-forwarder.log" | tail -3 | sed 's/^/# /'
}
check_eq "C2 (on_down block) stays blocked, carried by none" \
	"$(lab_api GET /api/v1/mappings/$M2 -H "$ADMIN" | body | jq -c '[.state, .carrying_proxy_id]')" '["blocked",null]'
check "... in the kernel's blocked set, not its active one" wait_for 3 kernel_blocked $C2
check "... its download is cut too" wait_for 5 test -s "$LAB_DIR/dl2.end"
check "... not completed (curl ended with an error)" not_completed "$LAB_DIR/dl2.end"
reaches() { [ -n "$(exit_of "$1")" ]; } # through any proxy at all (P1 takes no new connections)
check_fails "... and it cannot reach the internet through any other proxy" reaches $C2
check "C1 is in the kernel's active set" in_set $C1
check "a failover event on the live stream: C1 from P1 to P2" \
	wait_for 5 grep -q "^data: {\"client_ip\": *\"$C1\", *\"mapping_id\": *$M1, *\"proxy_id\": *$P1, *\"from\": *$P1, *\"to\": *$P2}" "$LAB_DIR/sse.log"
check "a log line by pgw-healthd" grep -q "client $C1: failover from proxy $P1 to proxy $P2" "$LAB_DIR/pgw-healthd.log"
check_eq "an audit row by pgw-healthd" \
	"$(lab_api GET '/api/v1/audit?action=mapping.failover' -H "$ADMIN" | body | jq -c '[.items[] | [.user, .object_id, .after.carrying_proxy_id]]')" \
	"[[\"pgw-healthd\",\"$M1\",$P2]]"

# P1 back: up at its first good probe (health_success_threshold 1), C1 back only after 4 up
download $C1 dl3
check "a long download of C1 through P2 is under way" wait_for 5 relaying $C1
lab_exec wan nft delete table inet pgwtest_fo
check "P1 is up again" wait_for 5 bash -c "[ \"\$(sqlite3 $PGW_DB 'SELECT status FROM proxy_health WHERE proxy_id = $P1')\" = up ]"
t2=$(lab_ms)
check "C2 (block) is active again with its primary" wait_for 5 in_set $C2
# sampled in one query with P1's probes up, until P1 has been up 4: C1 is with P2 all along
samples=0 early=0
for _ in $(seq 1 60); do
	read -r ups by < <(lab_db -separator ' ' "SELECT h.up_probes, coalesce(s.carrying_proxy_id, 0) FROM proxy_health h,
		mapping_state s WHERE h.proxy_id = $P1 AND s.id = $M1")
	[ "${ups:-9}" -ge 4 ] && break
	samples=$((samples + 1))
	[ "$by" = "$P2" ] || early=$((early + 1))
	sleep 0.1
done
check "P1 was seen up for fewer than 4 probes ($samples samples)" test "$samples" -gt 0
check_eq "... and C1 stayed with P2 in every one of them" "$early" 0
check "C1 is carried by P1 again" wait_for 10 carried_by $M1 $P1
t3=$(lab_ms)
echo "# C1 back on P1 $((t3 - t2)) ms after P1 was up again (failover_hysteresis 4, health_interval 1 s)"
check "... after P1 had been up for 4 probes (the log says so)" \
	grep -q "client $C1: failover from proxy $P2 to proxy $P1 (proxy $P1 is up, 4 probes up)" "$LAB_DIR/pgw-healthd.log"
check "... its exit follows: $LAB_SOCKS_NOAUTH" wait_for 5 leaves $C1 $LAB_SOCKS_NOAUTH
check "... its download through P2 is cut at the switch" wait_for 5 test -s "$LAB_DIR/dl3.end"
check "... not completed (curl ended with an error)" not_completed "$LAB_DIR/dl3.end"

# P1 killed for real
lab_stop_pid "$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")"
t4=$(lab_ms)
check "P1 killed: C1 is carried by P2 again" wait_for 5 carried_by $M1 $P2
t5=$(lab_ms)
echo "# C1 moved to P2 $((t5 - t4)) ms after P1 was killed"
check "... within one health interval and the probe's timeout ($((t5 - t4)) ms < 2500)" test $((t5 - t4)) -lt 2500
check "... and relays through it" wait_for 5 leaves $C1 $LAB_SOCKS_AUTH
check "C2 is blocked" wait_for 5 kernel_blocked $C2
check_eq "three moves audited" \
	"$(lab_api GET '/api/v1/audit?action=mapping.failover' -H "$ADMIN" | body | jq -c '[.items[] | .after.carrying_proxy_id] | sort')" \
	"[$P2,$P2,$P1]"
lab_client_tries $C2
n=$(lab_capture_stop)
check_eq "no client packet crossed the WAN interface through every step" "$n" "0"

# another organisation's proxy is never in a list: as its members see it, it is not there
check_match "organisation 1 keeps 192.168.2.0/28" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ADMIN" -H "$J" -d '{"networks":["192.168.2.0/28"]}')" '^200 '
check_match "a second organisation, acme (192.168.2.16/28)" \
	"$(lab_api POST /api/v1/orgs -H "$ADMIN" -H "$J" -d '{"name":"acme","networks":["192.168.2.16/28"]}')" '^201 '
out=$(lab_api POST /api/v1/proxies -H "$ADMIN" -H 'X-Pgw-Org: 2' -H "$J" \
	-d "{\"name\":\"acme-http\",\"type\":\"http\",\"host\":\"$LAB_HTTP_PROXY\",\"port\":8888,\"username\":\"$LAB_PROXY_USER\",\"password\":\"$LAB_PROXY_PASS\"}")
check_match "... with a proxy of its own" "$out" '^201 '
AP=$(body <<<"$out" | jq .id)
check_match "C1's mapping cannot list acme's proxy (404, as for a missing one)" \
	"$(lab_api PATCH /api/v1/mappings/$M1 -H "$ADMIN" -H 'X-Pgw-Org: 1' -H "$J" -d "{\"failover_proxy_ids\":[$P2,$AP]}")" "^404 .*$AP"
check_eq "... its list unchanged" "$(lab_db "SELECT group_concat(proxy_id) FROM mapping_failover WHERE mapping_id = $M1")" "$P2,$P3"
kill $sse 2>/dev/null
finish
