#!/usr/bin/env bash
# Scenario: the web dashboard in real headless Chromium (Debian chromium + playwright-core)
# against a running pgw in the lab: login, the four tabs, a proxy and a mapping made through
# the forms, the health gate visible, a badge turning down and up live, a viewer without
# write controls, no console errors. Screenshots go to build/screenshots.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
[ -d "$ROOT/tests/web/node_modules/playwright-core" ] || { echo "# playwright-core missing: run make deps"; exit 1; }
lab_scenario
export PGW_JWT_SECRET=web-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080 PGW_WEB_DIR=$ROOT/web
ctl=$PGW_BIN/pgwctl
$ctl settings set health_interval 2 >/dev/null
$ctl settings set health_down_interval 1 >/dev/null
$ctl settings set health_timeout 1 >/dev/null
echo 'web-admin-password' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'web-viewer-password' | $ctl user add viewer --role viewer --password-stdin >/dev/null
echo 'web-multi-password' | $ctl user add multi --role viewer --password-stdin >/dev/null
# a second organisation, made by the browser test late (the admin's own steps need one): acme,
# with a proxy of its own, and multi an admin there (a viewer in organisation 1)
cat >"$LAB_DIR/add-org.sh" <<ORG
set -e
$LAB_SQLITE "$PGW_DB" "INSERT INTO orgs (id, name) VALUES (2, 'acme');
    INSERT INTO proxies (org_id, name, type, host, port) VALUES (2, 'acme-socks', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
    INSERT INTO user_orgs (user_id, org_id, role) SELECT id, 2, 'admin' FROM users WHERE username = 'multi';"
$PGW_BIN/pgwctl notify users >/dev/null
ORG
lab_start_dante || exit 1
$ctl settings set health_interval 2 >/dev/null # live health events every 2 s
lab_db "INSERT INTO proxies (name, type, host, port) VALUES ('socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080),
    ('dead', 'socks5', '198.51.100.99', 1080), ('dante', 'socks5', '$LAB_DANTE', 1080)"
for d in healthd agent forwarder; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
# pgw-api under a small supervisor, so the browser test can restart it (like systemd would)
cat >"$LAB_DIR/api-loop.sh" <<LOOP
while [ ! -e "$LAB_DIR/api.stop" ]; do "$PGW_BIN/pgw-api" >>"$LAB_DIR/pgw-api.log" 2>&1 & echo \$! >"$LAB_DIR/api.pid"; wait; sleep 0.3; done
LOOP
lab_bg gw api-loop bash "$LAB_DIR/api-loop.sh"
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
mkdir -p "$ROOT/build/screenshots"
noauth=$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids")
echo "$noauth" >"$LAB_DIR/noauth.pid"
export PGW_URL=http://127.0.0.1:8080/ ADMIN_PASSWORD=web-admin-password VIEWER_PASSWORD=web-viewer-password \
	MULTI_PASSWORD=web-multi-password ADD_ORG="bash $LAB_DIR/add-org.sh" \
	SHOTS_DIR=$ROOT/build/screenshots PROXY_NAME=socks-open HTTP_PROXY_HOST=$LAB_HTTP_PROXY \
	PROXY_USER=$LAB_PROXY_USER PROXY_PASS=$LAB_PROXY_PASS \
	KILL_PROXY="kill \$(cat $LAB_DIR/noauth.pid)" \
	START_PROXY="ip netns exec $(lab_ns wan) microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH >/dev/null 2>&1 & echo \$! > $LAB_DIR/noauth.pid" \
	CLIENT_FETCH="ip netns exec $(lab_ns lan) curl -s -m 5 --interface 192.168.2.12 http://$LAB_WEB/ip" \
	LAN_PING="ip netns exec $(lab_ns lan) ping -n -q -c 1 -W 2 -I 192.168.2.13 192.168.2.1" \
	API_GAP="kill -KILL \$(cat $LAB_DIR/api.pid); $LAB_SQLITE $PGW_DB \"UPDATE mappings SET label = 'changed-in-the-gap' WHERE client_ip = '192.168.2.12'\"" \
	QUOTA_ON="$LAB_SQLITE $PGW_DB \"UPDATE mappings SET quota_bytes = 100000000000 WHERE client_ip = '192.168.2.12'\"" \
	UNREAD_ON="$LAB_SQLITE $PGW_DB 'ALTER TABLE usage_seen RENAME TO usage_seen_away' && $PGW_BIN/pgwctl notify mappings >/dev/null" \
	UNREAD_OFF="$LAB_SQLITE $PGW_DB 'ALTER TABLE usage_seen_away RENAME TO usage_seen'" \
	RENAME_LAN="ip link set ens19 down && ip link set ens19 name lanx0 && ip link set lanx0 up" \
	FWD_NOCAP="kill \$(awk '\$2 == \"pgw-forwarder\" {print \$1}' $LAB_DIR/pids) \$(cat $LAB_DIR/fwd2.pid 2>/dev/null) 2>/dev/null; sleep 0.5; setpriv --bounding-set=-net_admin,-net_raw --inh-caps=-net_admin,-net_raw $PGW_BIN/pgw-forwarder >>$LAB_DIR/pgw-forwarder-nocap.log 2>&1 & echo \$! >$LAB_DIR/fwd2.pid" \
	FWD_CAP="kill \$(cat $LAB_DIR/fwd2.pid); sleep 0.5; $PGW_BIN/pgw-forwarder >>$LAB_DIR/pgw-forwarder-again.log 2>&1 & echo \$! >$LAB_DIR/fwd2.pid" \
	RENAME_BACK="ip link set lanx0 down && ip link set lanx0 name ens19 && ip addr replace 192.168.2.1/24 dev ens19 && ip addr replace fd00:2::1/64 dev ens19 nodad && ip link set ens19 up"
(cd "$ROOT/tests/web" && timeout 240 ip netns exec "$(lab_ns gw)" node ui.mjs) >"$LAB_DIR/ui.out" 2>&1
rc=$?
[ -s "$LAB_DIR/noauth.pid" ] && kill "$(cat "$LAB_DIR/noauth.pid")" 2>/dev/null
touch "$LAB_DIR/api.stop"
kill "$(cat "$LAB_DIR/api.pid")" 2>/dev/null
sed 's/^/# /' "$LAB_DIR/ui.out"
check "the dashboard passes every browser check ($(grep -c '^ok' "$LAB_DIR/ui.out") of $(grep -c '^\(not \)\?ok' "$LAB_DIR/ui.out"))" test $rc -eq 0
finish
