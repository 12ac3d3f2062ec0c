#!/usr/bin/env bash
# Scenario (issue 21): the organisation scoping of pgw-api's REST reads and writes, decided
# once per request (auth_require: X-Pgw-Org, else the user's only organisation) and enforced by
# the DB connection (TEMP views over the main tables, writes to main.X with the organisation):
# another organisation's object answers exactly like a missing one; organisations and their
# networks (/api/v1/orgs), memberships (/api/v1/users), client addresses only in the
# organisation's networks, live events per organisation. The spec-generated two-organisation
# walk is in 14_api_spec (tests/api_spec_check.py).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
echo 'root-password-1' | $ctl user add root --role admin --password-stdin >/dev/null
echo 'carol-password-1' | $ctl user add carol --role admin --password-stdin >/dev/null
db() { lab_db "$@"; }
for k in health_interval health_down_interval health_timeout; do $ctl settings set $k 1 >/dev/null; done
lab_bg gw pgw-healthd "$PGW_BIN/pgw-healthd" # the health gate of new mappings
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ROOT_H=$(lab_api_login root root-password-1)
check_eq "a single-organisation install: organisation 1 owns the LAN network and every IPv6 client" \
	"$(lab_api GET /api/v1/orgs/1 -H "$ROOT_H" | cut -d' ' -f2- | jq -c .networks)" '["192.168.2.0/24","::/0"]'
# org 2 ('acme') with its own network (organisation 1 keeps the lower half of the LAN), proxy
# and mapping; carol: admin of acme only, not superadmin
db "INSERT INTO orgs (id, name) VALUES (2, 'acme');
    UPDATE org_networks SET cidr = '192.168.2.0/25' WHERE org_id = 1 AND cidr = '192.168.2.0/24';
    INSERT INTO org_networks (org_id, cidr) VALUES (2, '192.168.2.128/25');
    UPDATE users SET superadmin = 0 WHERE username = 'carol';
    DELETE FROM user_orgs WHERE user_id = (SELECT id FROM users WHERE username = 'carol');
    INSERT INTO user_orgs (user_id, org_id, role) SELECT id, 2, 'admin' FROM users WHERE username = 'carol';
    INSERT INTO proxies (id, org_id, name, type, host, port) VALUES (1, 1, 'one', 'socks5', '$LAB_SOCKS_NOAUTH', 1080),
        (2, 2, 'acme-proxy', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
    INSERT INTO mappings (id, org_id, client_ip, proxy_id) VALUES (1, 1, '192.168.2.10', 1), (2, 2, '192.168.2.140', 2);"
CAROL_H=$(lab_api_login carol carol-password-1)
J='Content-Type: application/json'
U=http://127.0.0.1:8080
names() { lab_api GET "$1" -H "$2" "${@:3}" | cut -d' ' -f2- | jq -c '[.items[] | (.name // .client_ip)]'; }
norm() { sed 's/"request_id":"[^"]*"//'; } # the answer without its request id
# an answer with the id in it replaced: id-blind comparison of "another's" and "missing"
as_n() { sed "s/\([^0-9]\)$1\([^0-9]\)/\1N\2/g" | norm; }

check_eq "carol (acme only) lists only acme's proxies" "$(names /api/v1/proxies "$CAROL_H")" '["acme-proxy"]'
check_eq "... and only acme's mappings" "$(names /api/v1/mappings "$CAROL_H")" '["192.168.2.140"]'
check_eq "... and only acme's health rows" \
	"$(lab_api GET /api/v1/health -H "$CAROL_H" | cut -d' ' -f2- | jq -c '[.items[].proxy_id]')" '[2]'
# devices seen on the LAN: each organisation sees the addresses of its own networks only
ip -n "$(lab_ns lan)" addr add 192.168.2.150/24 dev lan0
for a in 192.168.2.10 192.168.2.11 192.168.2.150; do lab_exec lan ping -n -q -c 1 -W 2 -I "$a" 192.168.2.1 >/dev/null; done
devs() { lab_api GET /api/v1/devices "$@" | cut -d' ' -f2- | jq -c '[.items[] | select(.seen == "neighbour") | .ip + "=" + .state] | sort'; }
check_eq "devices: carol (acme) sees the unmapped device of acme's network only" "$(devs -H "$CAROL_H")" '["192.168.2.150=unmapped"]'
check_eq "... organisation 1 its mapped client and its unmapped device, not acme's" \
	"$(devs -H "$ROOT_H" -H 'X-Pgw-Org: 1')" '["192.168.2.10=mapped","192.168.2.11=unmapped"]'
get() { lab_api GET "/api/v1/proxies/$1" -H "$CAROL_H" | as_n "$1"; }
check_eq "another organisation's proxy answers exactly like a missing one" "$(get 1)" "$(get 999)"
check_match "... which is a 404" "$(get 999)" '^404 '
hist() { lab_api GET "/api/v1/health/$1/history" -H "$CAROL_H" | as_n "$1"; }
has_hist() { [ "$(db "SELECT count(*) FROM health_history WHERE proxy_id = 1")" -gt 0 ]; }
check "(proxy 1 has a health history to hide)" wait_for 10 has_hist
check_eq "... so does its health history" "$(hist 1)" "$(hist 999)"
check_match "... (a 404)" "$(hist 999)" '^404 '
patch() { lab_api PATCH "/api/v1/proxies/$1" -H "$CAROL_H" -H "$J" -d '{"enabled":false}' | as_n "$1"; }
check_eq "carol cannot change it: the answer of a missing proxy" "$(patch 1)" "$(patch 999)"
del() { lab_api DELETE "/api/v1/mappings/$1" -H "$CAROL_H" | as_n "$1"; }
check_eq "... nor delete another organisation's mapping: the answer of a missing one" "$(del 1)" "$(del 999)"
check_match "... (which is a 404)" "$(del 999)" '^404 '
check_eq "... both untouched" \
	"$(db "SELECT (SELECT enabled FROM proxies WHERE id = 1) || ',' || (SELECT count(*) FROM mappings WHERE id = 1)")" "1,1"
check_eq "the superadmin sees both organisations' proxies" "$(names /api/v1/proxies "$ROOT_H")" '["one","acme-proxy"]'
check_eq "... and with X-Pgw-Org: 2 only acme's" "$(names /api/v1/proxies "$ROOT_H" -H 'X-Pgw-Org: 2')" '["acme-proxy"]'
check_match "X-Pgw-Org naming an organisation that does not exist: 404" \
	"$(lab_api GET /api/v1/proxies -H "$ROOT_H" -H 'X-Pgw-Org: 99')" '^404 .*no organisation 99'
org() { lab_api GET /api/v1/proxies -H "$CAROL_H" -H "X-Pgw-Org: $1" | as_n "$1"; }
check_eq "... and one carol is not a member of answers exactly the same" "$(org 1)" "$(org 99)"
check_match "... (a 404)" "$(org 1)" '^404 '
check_match "X-Pgw-Org that is not an id: 400" "$(lab_api GET /api/v1/proxies -H "$ROOT_H" -H 'X-Pgw-Org: x')" '^400 '
check_match "... nor one written with a sign (an id is digits only, as in a path)" "$(lab_api GET /api/v1/proxies -H "$ROOT_H" -H 'X-Pgw-Org: +2')" '^400 '

# writes land in the request's organisation
out=$(lab_api POST /api/v1/proxies -H "$CAROL_H" -H "$J" \
	-d "{\"name\":\"one\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080}")
check_match "carol creates a proxy named like organisation 1's (names are per organisation): 201" "$out" '^201 '
check_eq "... and it belongs to acme" "$(db "SELECT org_id FROM proxies WHERE name = 'one' ORDER BY id DESC LIMIT 1")" "2"
mapto() { lab_api POST /api/v1/mappings -H "$CAROL_H" -H "$J" -d "{\"client_ip\":\"192.168.2.150\",\"proxy_id\":$1}" | as_n "$1"; }
check_eq "carol cannot map a client to organisation 1's proxy: the answer of a missing proxy" "$(mapto 1)" "$(mapto 999)"
check_eq "... nothing stored" "$(db "SELECT count(*) FROM mappings WHERE client_ip = '192.168.2.150'")" "0"
out=$(lab_api POST /api/v1/proxies -H "$ROOT_H" -H 'X-Pgw-Org: 1' -H "$J" \
	-d "{\"name\":\"root-one\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080}")
check_match "the superadmin creates a proxy in organisation 1 (X-Pgw-Org: 1)" "$out" '^201 '
check_eq "... it belongs to organisation 1" "$(db "SELECT org_id FROM proxies WHERE name = 'root-one'")" "1"
check_match "with two organisations, a superadmin's change without X-Pgw-Org: 400 org_required" \
	"$(lab_api POST /api/v1/proxies -H "$ROOT_H" -H "$J" -d '{"name":"x","type":"socks5","host":"h","port":1}')" \
	'^400 .*org_required'

# audit rows carry their organisation; the search is scoped
check_eq "the audit search of a superadmin sees carol's change" \
	"$(lab_api GET '/api/v1/audit?action=proxy.create' -H "$ROOT_H" | cut -d' ' -f2- | jq '[.items[] | select(.user == "carol")] | length')" "1"
check_eq "... recorded in acme" "$(db "SELECT org_id FROM audit WHERE action = 'proxy.create' AND username = 'carol'")" "2"
check_eq "organisation 1 has audit rows of its own (root's)" \
	"$(db "SELECT count(*) > 0 FROM audit WHERE org_id = 1 AND username = 'root'")" "1"
check_eq "... which carol's audit search (an admin of acme) does not show" \
	"$(lab_api GET '/api/v1/audit' -H "$CAROL_H" | cut -d' ' -f2- | jq -c '[.items[].user] | unique')" '["carol"]'

# users and the gateway's settings are a superadmin's
check_match "carol (an organisation admin) cannot list users" "$(lab_api GET /api/v1/users -H "$CAROL_H")" '^403 '
carol_id=$(db "SELECT id FROM users WHERE username = 'carol'")
check_match "... nor change herself" \
	"$(lab_api PATCH "/api/v1/users/$carol_id" -H "$CAROL_H" -H "$J" -d '{"disabled":false}')" '^403 '
check_eq "... still not a superadmin" "$(db "SELECT superadmin FROM users WHERE username = 'carol'")" "0"
check_match "... nor change the gateway's settings" \
	"$(lab_api PUT /api/v1/config -H "$CAROL_H" -H "$J" -d '{"health_interval":"7"}')" '^403 '

# a user of several organisations: an organisation's objects need X-Pgw-Org, the user's own
# business (who am I, logout, one's password) does not. Memberships are the superadmin's, by API
check_eq "the superadmin makes carol a viewer of organisation 1 too (memberships by API)" \
	"$(lab_api PATCH "/api/v1/users/$carol_id" -H "$ROOT_H" -H "$J" -d '{"orgs":[{"id":2,"role":"admin"},{"id":1,"role":"viewer"}]}' |
		jq -Rc 'split(" ") | [.[0], (.[1:] | join(" ") | fromjson | .orgs)]')" \
	'["200",[{"id":1,"name":"default","role":"viewer"},{"id":2,"name":"acme","role":"admin"}]]'
check_match "'role' and 'orgs' together: 400, nothing changed (one was dropped: a superadmin made of a viewer)" \
	"$(lab_api POST /api/v1/users -H "$ROOT_H" -H "$J" -d '{"username":"dave","password":"dave-password-1","role":"admin","orgs":[{"id":2,"role":"viewer"}]}')" \
	"^400 .*either 'role'"
check_match "... on PATCH too" \
	"$(lab_api PATCH "/api/v1/users/$carol_id" -H "$ROOT_H" -H "$J" -d '{"role":"viewer","orgs":[{"id":2,"role":"admin"}]}')" "^400 "
check_eq "... no user dave" "$(lab_db "SELECT count(*) FROM users WHERE username = 'dave'")" 0
check_eq "... /me lists both for the switcher, and no organisation chosen" \
	"$(lab_api GET /api/v1/me -H "$CAROL_H" | cut -d' ' -f2- | jq -c '[.org, [.orgs[].id], .superadmin]')" '[null,[1,2],false]'
check_match "carol in two organisations: listing proxies without X-Pgw-Org: 400 org_required" \
	"$(lab_api GET /api/v1/proxies -H "$CAROL_H")" '^400 .*org_required'
check_eq "... with X-Pgw-Org: 1 she sees organisation 1's, as a viewer" \
	"$(names /api/v1/proxies "$CAROL_H" -H 'X-Pgw-Org: 1')" '["one","root-one"]'
check_match "... and cannot change them there (viewer)" \
	"$(lab_api PATCH /api/v1/proxies/1 -H "$CAROL_H" -H 'X-Pgw-Org: 1' -H "$J" -d '{"enabled":false}')" '^403 '
check_match "... /me needs no organisation" "$(lab_api GET /api/v1/me -H "$CAROL_H")" '^200 .*carol'
lab_api PATCH "/api/v1/users/$carol_id" -H "$ROOT_H" -H "$J" -d '{"orgs":[{"id":2,"role":"admin"}]}' >/dev/null

# an API key acts in the organisation it was made in, while its maker belongs to it
key=$(lab_api POST /api/v1/api-keys -H "$CAROL_H" -H "$J" -d '{"name":"acme-script","role":"viewer"}' |
	cut -d' ' -f2- | jq -r .key)
check_eq "carol's API key sees acme's proxies only" "$(names /api/v1/proxies "Authorization: Bearer $key")" '["acme-proxy","one"]'
check_eq "... the key belongs to acme" "$(db "SELECT org_id FROM api_keys WHERE name = 'acme-script'")" "2"
check_eq "the superadmin's key list for organisation 1 does not show it" \
	"$(lab_api GET /api/v1/api-keys -H "$ROOT_H" -H 'X-Pgw-Org: 1' | cut -d' ' -f2- | jq '[.items[] | select(.name == "acme-script")] | length')" "0"
check_match "... (while the key works)" "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")" '^200 '
# a superadmin's key made in acme: acme's admin sees it, but only a superadmin revokes it
skey=$(lab_api POST /api/v1/api-keys -H "$ROOT_H" -H 'X-Pgw-Org: 2' -H "$J" -d '{"name":"root-script","role":"admin","superadmin":true}' |
	cut -d' ' -f2- | jq -r .id)
check_match "an organisation admin cannot revoke a superadmin's key in her organisation (403)" \
	"$(lab_api DELETE "/api/v1/api-keys/$skey" -H "$CAROL_H")" '^403 .*superadmin'
check_eq "... it still works (not revoked)" "$(db "SELECT revoked_at IS NULL FROM api_keys WHERE id = $skey")" 1
check_match "... a superadmin revokes it" "$(lab_api DELETE "/api/v1/api-keys/$skey" -H "$ROOT_H" -H 'X-Pgw-Org: 2')" '^204'
# who signs in how, who reaches the API and where the files are: the superadmins' to read
$ctl settings set dhcp_leases_file "$LAB_DIR/leases" >/dev/null
cfg_has() { lab_api GET /api/v1/config "$@" | cut -d' ' -f2- | jq -c '[has("dhcp_leases_file"), has("oidc_breakglass_user") or has("oidc_role_map") or has("api_allow"), has("health_interval")]'; }
check_eq "GET /config for an organisation admin: no file, sign-in or API access settings" "$(cfg_has -H "$CAROL_H")" '[false,false,true]'
check_eq "... for a superadmin: the file setting too" "$(cfg_has -H "$ROOT_H" | jq -c '[.[0], .[2]]')" '[true,true]'

# organisations and their networks, through the API (superadmin)
check_match "an organisation admin cannot make organisations" \
	"$(lab_api POST /api/v1/orgs -H "$CAROL_H" -H "$J" -d '{"name":"x"}')" '^403 '
check_eq "... and lists only her own" "$(lab_api GET /api/v1/orgs -H "$CAROL_H" | cut -d' ' -f2- | jq -c '[.items[].name]')" '["acme"]'
check_match "a network outside the LAN (lan_cidr) is refused" \
	"$(lab_api POST /api/v1/orgs -H "$ROOT_H" -H "$J" -d '{"name":"beta","networks":["10.30.0.0/16"]}')" '^400 .*not inside the LAN network'
check_match "a network with host bits is refused" \
	"$(lab_api POST /api/v1/orgs -H "$ROOT_H" -H "$J" -d '{"name":"beta","networks":["192.168.2.1/25"]}')" '^400 '
check_match "acme cannot take a part of organisation 1's network: 409, naming the overlap" \
	"$(lab_api PATCH /api/v1/orgs/2 -H "$ROOT_H" -H "$J" -d '{"networks":["192.168.2.64/26"]}')" '^409 .*overlaps 192.168.2.0/25 of organisation .default'
check_match "organisation 1 cannot shrink away from its own mapping (192.168.2.10)" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ROOT_H" -H "$J" -d '{"networks":["192.168.2.64/26"]}')" '^409 .*192.168.2.10'
check_match "acme cannot shrink away from its mapping (192.168.2.140)" \
	"$(lab_api PATCH /api/v1/orgs/2 -H "$ROOT_H" -H "$J" -d '{"networks":["192.168.2.192/26"]}')" '^409 .*192.168.2.140'
db "INSERT INTO mappings (org_id, client_ip, proxy_id) VALUES (2, '192.168.2.20', 2)" # by hand, in organisation 1's network
check_match "a network holding another organisation's mapping (one made by hand) is refused" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ROOT_H" -H "$J" -d '{"networks":["192.168.2.0/25","::/0"]}')" '^409 .*192.168.2.20 is mapped by another'
db "DELETE FROM mappings WHERE client_ip = '192.168.2.20'"
check_match "... and accepted once it is gone (organisation 1 gives up ::/0: no IPv6 client is anybody's now)" \
	"$(lab_api PATCH /api/v1/orgs/1 -H "$ROOT_H" -H "$J" -d '{"networks":["192.168.2.0/25"]}')" '^200 '
mapip() { lab_api POST /api/v1/mappings -H "$CAROL_H" -H "$J" -d "{\"client_ip\":\"$1\",\"proxy_id\":2}" | norm | sed "s/$1/IP/"; }
check_eq "carol cannot map organisation 1's client: the answer for an address in nobody's network" \
	"$(mapip 192.168.2.20)" "$(mapip 2001:db8:99::1)"
check_match "... (a 400)" "$(mapip 192.168.2.20)" '^400 .*not in the organisation'
check_match "carol maps a client of acme's network (201)" \
	"$(lab_api POST /api/v1/mappings -H "$CAROL_H" -H "$J" -d '{"client_ip":"192.168.2.141","proxy_id":2}')" '^201 '
check_match "an organisation that owns objects cannot be deleted (409)" "$(lab_api DELETE /api/v1/orgs/2 -H "$ROOT_H")" '^409 '
check_match "... nor organisation 1 (409)" "$(lab_api DELETE /api/v1/orgs/1 -H "$ROOT_H")" '^409 '

# an organisation's own settings: the health URL its proxies are probed with
status_of() { lab_api GET /api/v1/health -H "$ROOT_H" | cut -d' ' -f2- | jq -r ".items[] | select(.proxy_id == $1) | .status"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
both_up() { is_status 1 up && is_status 2 up; }
check "acme's and organisation 1's proxies are up" wait_for 10 both_up
hid0=$(db "SELECT coalesce(max(id), 0) FROM health_history")
check_match "carol (acme's admin) gives acme a health URL of its own" \
	"$(lab_api PUT /api/v1/orgs/2/settings -H "$CAROL_H" -H "$J" -d "{\"health_url\":\"http://$LAB_WEB:81/ip\"}")" \
	"^200 .*\"health_url\": *\"http://$LAB_WEB:81/ip\""
check_match "... a viewer could not, nor can she set organisation 1's (404: not hers)" \
	"$(lab_api PUT /api/v1/orgs/1/settings -H "$CAROL_H" -H "$J" -d '{"health_url":null}')" '^404 '
check "acme's proxy is probed with it (nothing listens on :81): down" \
	wait_for 15 is_status 2 down
# probes of proxy 1 after pgw-healthd had acme's URL (acme's first probe down): none down
hid1=$(db "SELECT coalesce(min(id), 0) FROM health_history WHERE proxy_id = 2 AND status = 'down' AND id > $hid0")
probed_1() { [ "$(db "SELECT count(*) FROM health_history WHERE proxy_id = 1 AND id > $hid1")" -ge 3 ]; }
check "... organisation 1's proxy, on the same upstream, probed three times since" wait_for 10 probed_1
check_eq "... and up every time (the gateway's URL)" \
	"$(db "SELECT count(*) FROM health_history WHERE proxy_id = 1 AND id > $hid1 AND status = 'down'") $(status_of 1)" "0 up"
check_match "carol clears it: the gateway's URL again" \
	"$(lab_api PUT /api/v1/orgs/2/settings -H "$CAROL_H" -H "$J" -d '{"health_url":null}')" '^200 .*"health_url": *null'
check "... and acme's proxy is up again" wait_for 15 is_status 2 up

# live events per organisation (?org=: an EventSource cannot send headers)
lab_exec gw curl -s -N -m 4 -H "$ROOT_H" "$U/api/v1/events?org=2" >"$LAB_DIR/sse-root2" &
p1=$!
lab_exec gw curl -s -N -m 4 -H "$CAROL_H" "$U/api/v1/events" >"$LAB_DIR/sse-carol" &
p2=$!
check "both streams are connected" wait_for 5 bash -c "grep -q '^: connected' $LAB_DIR/sse-root2 && grep -q '^: connected' $LAB_DIR/sse-carol"
lab_api PATCH /api/v1/proxies/1 -H "$ROOT_H" -H 'X-Pgw-Org: 1' -H "$J" -d '{"name":"one-renamed"}' >/dev/null
lab_api PATCH /api/v1/mappings/1 -H "$ROOT_H" -H 'X-Pgw-Org: 1' -H "$J" -d '{"label":"org1-marker"}' >/dev/null
lab_api PATCH /api/v1/proxies/2 -H "$CAROL_H" -H "$J" -d '{"name":"acme-renamed"}' >/dev/null
wait $p1 $p2
# what a stream had: proxies refetches, mappings refetches, events about organisation 1's proxy
# or client (health rows of acme's own proxy come and go with its probes: allowed)
seen() { echo "$(grep -c '^event: proxies' "$1"),$(grep -c '^event: mappings' "$1"),$(grep -c -E '"proxy_id": *1[,}]|192\.168\.2\.10"|org1-marker' "$1")"; }
check_eq "the superadmin watching acme (?org=2) gets acme's refetch only" "$(seen "$LAB_DIR/sse-root2")" "1,0,0"
check_eq "carol's stream the same: acme's proxies refetch, nothing of organisation 1's" "$(seen "$LAB_DIR/sse-carol")" "1,0,0"
lab_exec gw curl -s -N -m 20 -H "$CAROL_H" "$U/api/v1/events" >"$LAB_DIR/sse-carol2" &
p2=$!
check "carol's new stream is connected" wait_for 5 grep -q '^: connected' "$LAB_DIR/sse-carol2"
lab_api PATCH "/api/v1/users/$carol_id" -H "$ROOT_H" -H "$J" -d '{"orgs":[]}' >/dev/null
lab_api PATCH /api/v1/proxies/2 -H "$ROOT_H" -H 'X-Pgw-Org: 2' -H "$J" -d '{"name":"acme-again"}' >/dev/null
check "carol out of acme: her open event stream ends" wait_for 5 bash -c "! kill -0 $p2 2>/dev/null"
check_fails "... without the event that came after" grep -q '^event: proxies' "$LAB_DIR/sse-carol2"
check_match "... her key stops working" "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")" '^401 '
check_match "... and she reads nothing (403: no organisation)" "$(lab_api GET /api/v1/proxies -H "$CAROL_H")" '^403 '

# resolvers of their own: at most 16 organisations (pgw-forwarder holds that many lists)
codes=""
for i in $(seq 1 17); do
	id=$(lab_api POST /api/v1/orgs -H "$ROOT_H" -H "$J" -d "{\"name\":\"dns-$i\"}" | cut -d' ' -f2- | jq .id)
	codes+="$(lab_api PUT "/api/v1/orgs/$id/settings" -H "$ROOT_H" -H "$J" -d '{"dns_upstream":"192.0.2.53:53"}' | cut -c1-3) "
done
check_eq "16 organisations get resolvers of their own, the 17th a 409" "$(echo $codes | tr ' ' '\n' | sort | uniq -c | tr -s ' ' | tr '\n' ';')" " 16 200; 1 409;"
finish
