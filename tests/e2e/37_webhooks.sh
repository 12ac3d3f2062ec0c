#!/usr/bin/env bash
# Scenario (issue 20, alerts): webhooks. An admin adds a receiver (url, event types, a secret);
# the test button delivers at once; a proxy killed reaches the receiver as a signed proxy.down
# (X-Pgw-Signature: sha256=HMAC-SHA256 of the body under the secret, checked by the receiver)
# within 1 s of its death, with client.blocked for its client; proxy.up when it returns; a
# receiver that fails is retried with backoff under the same delivery id; a webhook gets only
# the types it lists and nothing while disabled; bad input is refused; everything is audited and
# the secret is never shown nor logged.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
SECRET=whsec-$RANDOM-$RANDOM-lab
RX=$LAB_DIR/rx.log
: >"$RX"
lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES;
	INSERT INTO mappings (client_ip, proxy_id, enabled, label) VALUES ('192.168.2.10', 2, 1, 'laptop'),
	('192.168.2.11', 1, 1, 'tv')"
$ctl settings set health_interval 1 >/dev/null
$ctl settings set health_down_interval 1 >/dev/null
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'viewer-password-1' | $ctl user add viewer --role viewer --password-stdin >/dev/null
lab_bg wan webhook-rx python3 "$ROOT/tests/e2e/webhook_rx.py" "$LAB_WEB" 9090 "$RX" "$SECRET"
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
check "the receiver listens" lab_wait_port wan "$LAB_WEB" 9090
ADMIN=$(lab_api_login admin admin-password-1)
VIEWER=$(lab_api_login viewer viewer-password-1)
J='Content-Type: application/json'
body() { cut -d' ' -f2-; }
up() { [ "$(lab_db "SELECT count(*) FROM proxy_health WHERE status = 'up'")" = 3 ]; }
check "the proxies are up" wait_for 10 up
hook() { lab_api POST /api/v1/webhooks -H "$ADMIN" -H "$J" -d "$1"; }

out=$(hook "{\"name\":\"ops\",\"url\":\"http://$LAB_WEB:9090/ops\",\"events\":[\"proxy.down\",\"proxy.up\",\"client.blocked\"],\"secret\":\"$SECRET\"}")
check_match "an admin adds a webhook (201)" "$out" '^201 '
W1=$(body <<<"$out" | jq .id)
check_eq "... shown with its events, has_secret, never the secret" \
	"$(body <<<"$out" | jq -c '[.name, .events, .has_secret, .enabled, has("secret"), .deliveries]')" \
	'["ops",["proxy.down","proxy.up","client.blocked"],true,true,false,0]'
check_fails "... the secret is in no answer" grep -q "$SECRET" <<<"$(lab_api GET /api/v1/webhooks -H "$ADMIN")"
out=$(hook "{\"name\":\"up-only\",\"url\":\"http://$LAB_WEB:9090/up-only\",\"events\":[\"proxy.up\"]}")
W2=$(body <<<"$out" | jq .id)
check_eq "a second one, only proxy.up, unsigned (no secret)" "$(body <<<"$out" | jq -c '[.events, .has_secret]')" '[["proxy.up"],false]'
out=$(hook "{\"name\":\"all\",\"url\":\"http://$LAB_WEB:9090/all\",\"enabled\":false,\"secret\":\"$SECRET\"}")
W3=$(body <<<"$out" | jq .id)
check_eq "a third, disabled; without events: every type" "$(body <<<"$out" | jq -c '[(.events | length), .enabled]')" '[5,false]'
check_match "ftp://: 400" "$(hook '{"name":"x","url":"ftp://203.0.113.10/x"}')" '^400 .*only http'
check_match "a user and password in the URL: 400" "$(hook '{"name":"x","url":"http://u:p@203.0.113.10/x"}')" '^400 .*no user or password'
check_match "not a URL: 400" "$(hook '{"name":"x","url":"203.0.113.10/hook"}')" '^400 '
check_match "an unknown event type: 400 naming it" "$(hook "{\"name\":\"x\",\"url\":\"http://$LAB_WEB:9090/x\",\"events\":[\"proxy.exploded\"]}")" "^400 .*proxy.exploded"
check_match "a type twice: 400" "$(hook "{\"name\":\"x\",\"url\":\"http://$LAB_WEB:9090/x\",\"events\":[\"proxy.up\",\"proxy.up\"]}")" "^400 .*twice"
check_match "a taken name: 409" "$(hook "{\"name\":\"ops\",\"url\":\"http://$LAB_WEB:9090/x\"}")" '^409 '
check_eq "... none of these stored" "$(lab_db 'SELECT count(*) FROM webhooks')" 3
check_match "a viewer may not read them (403)" "$(lab_api GET /api/v1/webhooks -H "$VIEWER")" '^403 '
check_match "... nor test one (403)" "$(lab_api POST /api/v1/webhooks/$W1/test -H "$VIEWER" -H "$J" -d '{}')" '^403 '

# the test button
out=$(lab_api POST "/api/v1/webhooks/$W1/test" -H "$ADMIN" -H "$J" -d '{}')
check_match "the test button delivers at once (delivered, HTTP 200)" "$out" '^200 .*"delivered": *true'
t=$(grep '"event": "test"' "$RX" | tail -1)
check_eq "... the receiver got a signed test event" "$(jq -c '[.path, .sig_ok, .body.type, .body.data.webhook_id, .content_type]' <<<"$t")" \
	"[\"/ops\",true,\"test\",$W1,\"application/json\"]"
check_match "... recorded on the webhook (last_status 200)" "$(lab_api GET /api/v1/webhooks/$W1 -H "$ADMIN")" '"last_status": *200'
out=$(lab_api POST "/api/v1/webhooks/$W3/test" -H "$ADMIN" -H "$J" -d '{}')
check_eq "a disabled one can be tested too (its signature checks out)" "$(grep '"path": "/all"' "$RX" | jq -c '[.sig_ok, .body.type]')" '[true,"test"]'
W4=$(hook "{\"name\":\"nobody\",\"url\":\"http://$LAB_WEB:9091/nobody\"}" | body | jq .id)
out=$(lab_api POST "/api/v1/webhooks/$W4/test" -H "$ADMIN" -H "$J" -d '{}')
check_match "a receiver that is not there: delivered false, with the reason" "$out" '^200 .*"delivered": *false.*"error": *"[^"]*[Cc]onnect'
lab_api DELETE "/api/v1/webhooks/$W4" -H "$ADMIN" >/dev/null
# never into the gateway itself or the LAN (an organisation's admin could reach its services or
# another organisation's devices), unless a superadmin allows private addresses
: >"$LAB_DIR/rx-loopback.log"
lab_bg gw loopback-rx python3 "$ROOT/tests/e2e/webhook_rx.py" 127.0.0.1 9099 "$LAB_DIR/rx-loopback.log" "$SECRET"
lab_wait_port gw 127.0.0.1 9099
W5=$(hook '{"name":"inside","url":"http://127.0.0.1:9099/inside"}' | body | jq .id)
# W5 aimed at url, then its test delivery
test_to() {
	lab_api PATCH "/api/v1/webhooks/$W5" -H "$ADMIN" -H "$J" -d "{\"url\":\"$1\"}" >/dev/null
	lab_api POST "/api/v1/webhooks/$W5/test" -H "$ADMIN" -H "$J" -d '{}'
}
out=$(lab_api POST "/api/v1/webhooks/$W5/test" -H "$ADMIN" -H "$J" -d '{}')
check_match "a webhook to the gateway's loopback: refused, saying why" "$out" '^200 .*"delivered": *false.*"error": *"refused: 127.0.0.1 is a loopback, private, LAN or gateway address'
check_eq "... nothing reached the service there" "$(wc -l <"$LAB_DIR/rx-loopback.log")" 0
check_match "... nor to a LAN device by an IPv4-mapped IPv6 address" "$(test_to "http://[::ffff:192.168.2.10]:9099/x")" '"error": *"refused: ::ffff:192.168.2.10 is'
# the gateway's own public address (its WAN side, 198.51.100.1), where its services answer too
lab_bg gw wan-rx python3 "$ROOT/tests/e2e/webhook_rx.py" 198.51.100.1 9098 "$LAB_DIR/rx-loopback.log" "$SECRET"
lab_wait_port gw 198.51.100.1 9098
check_match "... nor to the gateway's own WAN address" "$(test_to "http://198.51.100.1:9098/x")" '"error": *"refused: 198.51.100.1 is'
check_match "... nor to loopback through the NAT64 prefix (64:ff9b::127.0.0.1)" "$(test_to "http://[64:ff9b::7f00:1]:9099/x")" '"error": *"refused: 64:ff9b::7f00:1 is'
check_eq "... nothing reached either service" "$(wc -l <"$LAB_DIR/rx-loopback.log")" 0
# public addresses where the kernel's route says no: a network routed behind the LAN (another
# organisation's, say), and the all-zero address of the gateway's WAN network, which it answers
lab_exec gw ip route add 192.0.2.0/24 via 192.168.2.13
check_match "... nor to a network routed behind the LAN (192.0.2.0/24 via a LAN router)" "$(test_to "http://192.0.2.7:9099/x")" '"error": *"refused: 192.0.2.7 is'
check_match "... nor to the subnet-router anycast address of the gateway's WAN network (2001:db8:100::)" "$(test_to "http://[2001:db8:100::]:9099/x")" '"error": *"refused: 2001:db8:100:: is'
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"webhook_allow_private":"true"}' >/dev/null
check_match "webhook_allow_private=true (a superadmin's setting): delivered" \
	"$(test_to "http://127.0.0.1:9099/inside")" '^200 .*"delivered": *true'
lab_api PUT /api/v1/config -H "$ADMIN" -H "$J" -d '{"webhook_allow_private":"false"}' >/dev/null
lab_api DELETE "/api/v1/webhooks/$W5" -H "$ADMIN" >/dev/null
# another organisation's webhook hears nothing of this one's
check_match "organisation 1 keeps 192.168.2.0/25" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ADMIN" -H "$J" -d '{"networks":["192.168.2.0/25","fd00:2::/64"]}')" '^200 '
check_match "acme takes 192.168.2.128/25" \
	"$(lab_api POST /api/v1/orgs -H "$ADMIN" -H "$J" -d '{"name":"acme","networks":["192.168.2.128/25"]}')" '^201 '
check_match "acme's admin adds a webhook for proxy.down" \
	"$(lab_api POST /api/v1/webhooks -H "$ADMIN" -H 'X-Pgw-Org: 2' -H "$J" -d "{\"name\":\"acme\",\"url\":\"http://$LAB_WEB:9090/acme\",\"events\":[\"proxy.down\",\"client.blocked\"]}")" '^201 '
O1='X-Pgw-Org: 1' # two organisations now: a superadmin's changes name one
check_eq "... which organisation 1 does not see" "$(lab_api GET /api/v1/webhooks -H "$ADMIN" -H 'X-Pgw-Org: 1' | body | jq -c '[.items[].name]')" '["ops","up-only","all"]'

# a proxy dies: proxy.down within 1 s, signed; its client blocked
lab_stop_pid "$(awk '$2 == "microsocks-noauth" {print $1}' "$LAB_DIR/pids" | tail -1)"
t0=$(lab_ms)
lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip" >/dev/null 2>&1 # its client tries
down() { grep '"event": "proxy.down"' "$RX" | grep -q '"path": "/ops"'; }
check "the receiver gets proxy.down" wait_for 5 down
d=$(grep '"event": "proxy.down"' "$RX" | grep '"path": "/ops"' | head -1)
t1=$(jq .t <<<"$d")
echo "# proxy killed at $t0, proxy.down received at $t1: $((t1 - t0)) ms; $(jq -c .body <<<"$d")"
check "... within 1 s of the proxy's death ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
check "... correctly signed (X-Pgw-Signature: sha256=<HMAC-SHA256 of the body>)" jq -e '.sig_ok and (.signature | test("^sha256=[0-9a-f]{64}$"))' <<<"$d"
check_eq "... naming the proxy, why, and the organisation" \
	"$(jq -c '[.body.type, .body.org_id, .body.data.proxy_id, .body.data.proxy, .body.data.status, .delivery == .body.id]' <<<"$d")" \
	'["proxy.down",1,2,"socks-open","down",true]'
blocked() { grep '"event": "client.blocked"' "$RX" | grep -q '"path": "/ops"'; }
check "... and client.blocked for its client" wait_for 3 blocked
check_eq "... with the reason (proxy_down)" \
	"$(grep '"event": "client.blocked"' "$RX" | head -1 | jq -c '[.sig_ok, .body.data.client_ip, .body.data.reason, .body.data.proxy_id]')" \
	'[true,"192.168.2.10","proxy_down",2]'
check_eq "a webhook that does not list proxy.down gets none" "$(grep -c '"path": "/up-only"' "$RX")" 0
check_eq "a disabled one gets nothing (only its test)" "$(grep '"path": "/all"' "$RX" | grep -vc '"event": "test"')" 0
check_eq "another organisation's webhook gets nothing of it" "$(grep -c '"path": "/acme"' "$RX")" 0
lab_bg wan microsocks-noauth-2 microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH
upped() { [ "$(grep '"event": "proxy.up"' "$RX" | grep -c '"path": "/\(ops\|up-only\)"')" = 2 ]; }
check "the proxy back: proxy.up to both webhooks that list it" wait_for 25 upped
check_eq "... unsigned where there is no secret" "$(grep '"path": "/up-only"' "$RX" | jq -c '[.signature, .body.data.proxy_id]')" '[null,2]'
# counted again now, seconds later, for deliveries that came late
check_eq "... and still none of the outage to the disabled one, the other organisation's, or proxy.down to /up-only" \
	"$(grep '"path": "/all"' "$RX" | grep -vc '"event": "test"') $(grep -c '"path": "/acme"' "$RX") $(grep '"path": "/up-only"' "$RX" | grep -c '"event": "proxy.down"')" "0 0 0"
check_eq "an admin disabling a mapping is no alert (no client.blocked for it)" \
	"$(lab_api PATCH "/api/v1/mappings/$(lab_db "SELECT id FROM mappings WHERE client_ip = '192.168.2.11'")" -H "$ADMIN" -H "$O1" -H "$J" -d '{"enabled":false}' | cut -c1-3)" 200
sleep 1.5
check_eq "... (still one client.blocked, the laptop's)" "$(grep -c '"event": "client.blocked"' "$RX")" 1

# retries with backoff under the same delivery id
lab_api PATCH "/api/v1/webhooks/$W1" -H "$ADMIN" -H "$O1" -H "$J" -d "{\"url\":\"http://$LAB_WEB:9090/fail2\",\"events\":[\"proxy.down\"],\"secret\":\"$SECRET\"}" >/dev/null
lab_stop_pid "$(awk '$2 == "microsocks-noauth-2" {print $1}' "$LAB_DIR/pids" | tail -1)"
lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip" >/dev/null 2>&1
three() { [ "$(grep -c '"path": "/fail2"' "$RX")" = 3 ]; }
check "a receiver answering 503 twice: tried again until it takes it (3 attempts)" wait_for 10 three
r=$(grep '"path": "/fail2"' "$RX" | jq -s -c '[map(.status), (map(.delivery) | unique | length), (.[1].t - .[0].t), (.[2].t - .[1].t), (map(.sig_ok) | all)]')
echo "# attempts: $r (statuses, distinct delivery ids, gaps in ms, all signed)"
check "... one delivery id, 1 s then 2 s apart, each signed" \
	jq -e '.[0] == [503,503,200] and .[1] == 1 and .[2] >= 900 and .[2] < 1900 and .[3] >= 1900 and .[3] < 3000 and .[4]' <<<"$r"
# (the receiver logs an attempt before it answers; pgw-api counts it once the answer is in)
counted() { [ "$(lab_api GET "/api/v1/webhooks/$W1" -H "$ADMIN" | body | jq -c '[.failures, .deliveries, .last_status, .last_error]')" = '[2,5,200,""]' ]; }
wait_for 3 counted
check_eq "... counted on the webhook (2 failures; 5 delivered: test, down, blocked, up, this one; last_status, last_error)" \
	"$(lab_api GET "/api/v1/webhooks/$W1" -H "$ADMIN" | body | jq -c '[.failures, .deliveries, .last_status, .last_error]')" '[2,5,200,""]'
check "... logged" grep -q "webhook $W1: proxy.down .* attempt 1 failed (HTTP 503); again in 1 s" "$LAB_DIR/pgw-api.log"

# audit, no secret anywhere
check_eq "audited: create, update, test, delete" \
	"$(lab_db "SELECT group_concat(DISTINCT action) FROM (SELECT action FROM audit WHERE object_type = 'webhook' ORDER BY id)")" \
	"webhook.create,webhook.test,webhook.delete,webhook.update"
check_eq "a new secret shows in the audit as secret_changed, never itself" \
	"$(lab_db "SELECT count(*) FROM audit WHERE action = 'webhook.create' AND json_extract(after_json, '$.secret_changed') = 1")" 2
lab_api PATCH "/api/v1/webhooks/$W3" -H "$ADMIN" -H "$O1" -H "$J" -d "{\"url\":\"http://$LAB_WEB:9090/elsewhere\"}" >/dev/null
check_eq "a secret does not follow a webhook to another URL (has_secret false after the move)" \
	"$(lab_api GET "/api/v1/webhooks/$W3" -H "$ADMIN" | body | jq .has_secret)" false
check_eq "the secret is in no audit row" "$(lab_db "SELECT count(*) FROM audit WHERE coalesce(before_json, '') || coalesce(after_json, '') LIKE '%$SECRET%'")" 0
check_fails "... nor in any daemon's log" grep -q "$SECRET" "$LAB_DIR"/pgw-*.log
check_match "deleted (204)" "$(lab_api DELETE "/api/v1/webhooks/$W2" -H "$ADMIN" -H "$O1")" '^204'
check_match "... gone (404)" "$(lab_api GET "/api/v1/webhooks/$W2" -H "$ADMIN")" '^404 '
# at most 16 an organisation, however many ask at once (the count and the insert are one
# transaction: two creates could both take the last place)
n0=$(lab_db "SELECT count(*) FROM webhooks WHERE org_id = 1")
pids=()
for i in $(seq 1 24); do
	lab_exec gw curl -s -m 20 -o /dev/null -w '%{http_code}\n' -X POST -H "$ADMIN" -H "$O1" -H "$J" \
		-d "{\"name\":\"cap-$i\",\"url\":\"http://$LAB_WEB:9090/cap\",\"enabled\":false}" \
		http://127.0.0.1:8080/api/v1/webhooks >"$LAB_DIR/cap.$i" &
	pids+=($!)
done
wait "${pids[@]}"
check_eq "24 creates at once with $n0 there: 16 in all, the others 409" \
	"$(lab_db "SELECT count(*) FROM webhooks WHERE org_id = 1") $(cat "$LAB_DIR"/cap.* | grep -c '^201$') $(cat "$LAB_DIR"/cap.* | grep -c '^409$')" \
	"16 $((16 - n0)) $((24 - 16 + n0))"
finish
