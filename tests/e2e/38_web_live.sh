#!/usr/bin/env bash
# Scenario (issue 20, the dashboard): live operations in real headless Chromium (Debian
# chromium + playwright-core): the throughput chart moving during an iperf3 run, the latency
# chart with axes and units, the Connections view (a running download appears with growing
# bytes, sorts, and ends when closed from the UI), a client's drill-down, webhooks added and
# tested from the Configuration tab, a viewer's read-only view, the dark theme, phone width,
# the keyboard, and pgw-forwarder killed and started again (the banner says so, then clears).
# Screenshots go to build/screenshots.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
[ -d "$ROOT/tests/web/node_modules/playwright-core" ] || { echo "# playwright-core missing: run make deps"; exit 1; }
lab_scenario
lab_api_env
export PGW_WEB_DIR=$ROOT/web
ctl=$PGW_BIN/pgwctl
head -c 8000000 /dev/urandom >"$LAB_DIR/www/files/8m.bin"
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
	INSERT INTO mappings (client_ip, proxy_id, enabled, label) VALUES ('192.168.2.10', 2, 1, 'laptop'),
	('192.168.2.11', 1, 1, 'tv')"
$ctl settings set health_interval 2 >/dev/null
echo 'web-admin-password' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'web-viewer-password' | $ctl user add viewer --role viewer --password-stdin >/dev/null
lab_bg wan iperf3 iperf3 -s -B "$LAB_WEB" -p 5201
lab_bg wan webhook-rx python3 "$ROOT/tests/e2e/webhook_rx.py" "$LAB_WEB" 9090 "$LAB_DIR/rx.log" ui-secret-123
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
check "iperf3 and the receiver listen" bash -c "$(declare -f lab_wait_port lab_exec lab_ns); LAB_ID=$LAB_ID; lab_wait_port wan $LAB_WEB 5201 && lab_wait_port wan $LAB_WEB 9090"
relays() { [ -n "$(lab_exec lan curl -s -m 3 --interface 192.168.2.10 "http://$LAB_WEB/ip")" ]; }
check "the laptop relays" wait_for 10 relays
mkdir -p "$ROOT/build/screenshots"
export PGW_URL=http://127.0.0.1:8080/ ADMIN_PASSWORD=web-admin-password VIEWER_PASSWORD=web-viewer-password \
	SHOTS_DIR=$ROOT/build/screenshots CLIENT=192.168.2.10 RECEIVER=http://$LAB_WEB:9090/ui \
	DOWNLOAD_END=$LAB_DIR/dl.end RECEIVED="cat $LAB_DIR/rx.log" \
	IPERF="(ip netns exec $(lab_ns lan) timeout 20 iperf3 -c $LAB_WEB -p 5201 -B 192.168.2.11 -t 8 >/dev/null 2>&1 &)" \
	OTHER_DOWNLOAD="(ip netns exec $(lab_ns lan) curl -s -o /dev/null -m 20 --interface 192.168.2.11 http://$LAB_WEB/slow/8m.bin >/dev/null 2>&1 &)" \
	FWD_KILL="kill -KILL \$(awk '\$2 == \"pgw-forwarder\" {p = \$1} END {print p}' $LAB_DIR/pids) && sed -i '/ pgw-forwarder\$/d' $LAB_DIR/pids" \
	FWD_START="(ip netns exec $(lab_ns gw) $PGW_BIN/pgw-forwarder >>$LAB_DIR/pgw-forwarder.log 2>&1 & echo \"\$! pgw-forwarder\" >>$LAB_DIR/pids)" \
	DOWNLOAD="rm -f $LAB_DIR/dl.end; (ip netns exec $(lab_ns lan) curl -s -o /dev/null -m 60 --interface 192.168.2.10 http://$LAB_WEB/slow/8m.bin; echo \$? >$LAB_DIR/dl.end) >/dev/null 2>&1 &"
(cd "$ROOT/tests/web" && timeout 240 ip netns exec "$(lab_ns gw)" node live.mjs) >"$LAB_DIR/live.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/live.out"
check "the live views pass every browser check ($(grep -c '^ok' "$LAB_DIR/live.out") of $(grep -c '^\(not \)\?ok' "$LAB_DIR/live.out"))" test $rc -eq 0
check "the UI's closes are in the forwarder's log (close=closed_by_admin)" grep -q "client=192.168.2.10:[0-9]* .*close=closed_by_admin" "$LAB_DIR/pgw-forwarder.log"
finish
