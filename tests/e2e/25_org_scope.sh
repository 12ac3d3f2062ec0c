#!/usr/bin/env bash
# Scenario (issue 21, first part): the organisation scoping of pgw-api's REST reads and writes,
# decided once per request (auth_require: X-Pgw-Org, else the user's only organisation) and
# enforced by the DB connection (TEMP views over the main tables, writes to main.X with the
# organisation): another organisation's object answers exactly like a missing one. Organisations
# and memberships are made in SQL here: /api/v1/orgs, memberships, live events and /metrics per
# organisation are the rest of the issue (docs/design/TENANTS.md).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
ctl=$PGW_BIN/pgwctl
echo 'root-password-1' | $ctl user add root --role admin --password-stdin >/dev/null
echo 'carol-password-1' | $ctl user add carol --role admin --password-stdin >/dev/null
db() { lab_db "$@"; }
# org 2 ('acme') with its own network, proxy and mapping; carol: admin of acme only, not superadmin
db "INSERT INTO orgs (id, name) VALUES (2, 'acme');
    INSERT INTO org_networks (org_id, cidr) VALUES (2, '10.20.0.0/16');
    UPDATE users SET superadmin = 0 WHERE username = 'carol';
    DELETE FROM user_orgs WHERE user_id = (SELECT id FROM users WHERE username = 'carol');
    INSERT INTO user_orgs (user_id, org_id, role) SELECT id, 2, 'admin' FROM users WHERE username = 'carol';
    INSERT INTO proxies (id, org_id, name, type, host, port) VALUES (1, 1, 'one', 'socks5', '$LAB_SOCKS_NOAUTH', 1080),
        (2, 2, 'acme-proxy', 'socks5', '$LAB_SOCKS_NOAUTH', 1080);
    INSERT INTO mappings (id, org_id, client_ip, proxy_id) VALUES (1, 1, '192.168.2.10', 1), (2, 2, '192.168.2.11', 2);"
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ROOT_H=$(lab_api_login root root-password-1)
CAROL_H=$(lab_api_login carol carol-password-1)
J='Content-Type: application/json'
names() { lab_api GET "$1" -H "$2" "${@:3}" | cut -d' ' -f2- | jq -c '[.items[] | (.name // .client_ip)]'; }
norm() { sed 's/"request_id":"[^"]*"//'; } # the answer without its request id
# an answer with the id in it replaced: id-blind comparison of "another's" and "missing"
as_n() { sed "s/\([^0-9]\)$1\([^0-9]\)/\1N\2/g" | norm; }

check_eq "carol (acme only) lists only acme's proxies" "$(names /api/v1/proxies "$CAROL_H")" '["acme-proxy"]'
check_eq "... and only acme's mappings" "$(names /api/v1/mappings "$CAROL_H")" '["192.168.2.11"]'
check_eq "... and only acme's health rows" \
	"$(lab_api GET /api/v1/health -H "$CAROL_H" | cut -d' ' -f2- | jq -c '[.items[].proxy_id]')" '[2]'
get() { lab_api GET "/api/v1/proxies/$1" -H "$CAROL_H" | as_n "$1"; }
check_eq "another organisation's proxy answers exactly like a missing one" "$(get 1)" "$(get 999)"
check_match "... which is a 404" "$(get 999)" '^404 '
hist() { lab_api GET "/api/v1/health/$1/history" -H "$CAROL_H" | as_n "$1"; }
check_eq "... so does its health history" "$(hist 1)" "$(hist 999)"
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
check_match "X-Pgw-Org that is not an id: 400" "$(lab_api GET /api/v1/proxies -H "$ROOT_H" -H 'X-Pgw-Org: x')" '^400 '

# writes land in the request's organisation
out=$(lab_api POST /api/v1/proxies -H "$CAROL_H" -H "$J" \
	-d "{\"name\":\"one\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_NOAUTH\",\"port\":1080}")
check_match "carol creates a proxy named like organisation 1's (names are per organisation): 201" "$out" '^201 '
check_eq "... and it belongs to acme" "$(db "SELECT org_id FROM proxies WHERE name = 'one' ORDER BY id DESC LIMIT 1")" "2"
mapto() { lab_api POST /api/v1/mappings -H "$CAROL_H" -H "$J" -d "{\"client_ip\":\"192.168.2.12\",\"proxy_id\":$1}" | as_n "$1"; }
check_eq "carol cannot map a client to organisation 1's proxy: the answer of a missing proxy" "$(mapto 1)" "$(mapto 999)"
check_eq "... nothing stored" "$(db "SELECT count(*) FROM mappings WHERE client_ip = '192.168.2.12'")" "0"
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
# business (who am I, logout, one's password) does not
db "INSERT INTO user_orgs (user_id, org_id, role) VALUES ($carol_id, 1, 'viewer')"
check_match "carol in two organisations: listing proxies without X-Pgw-Org: 400 org_required" \
	"$(lab_api GET /api/v1/proxies -H "$CAROL_H")" '^400 .*org_required'
check_eq "... with X-Pgw-Org: 1 she sees organisation 1's, as a viewer" \
	"$(names /api/v1/proxies "$CAROL_H" -H 'X-Pgw-Org: 1')" '["one","root-one"]'
check_match "... and cannot change them there (viewer)" \
	"$(lab_api PATCH /api/v1/proxies/1 -H "$CAROL_H" -H 'X-Pgw-Org: 1' -H "$J" -d '{"enabled":false}')" '^403 '
check_match "... /me needs no organisation" "$(lab_api GET /api/v1/me -H "$CAROL_H")" '^200 .*carol'
db "DELETE FROM user_orgs WHERE user_id = $carol_id AND org_id = 1"

# an API key acts in the organisation it was made in, while its maker belongs to it
key=$(lab_api POST /api/v1/api-keys -H "$CAROL_H" -H "$J" -d '{"name":"acme-script","role":"viewer"}' |
	cut -d' ' -f2- | jq -r .key)
check_eq "carol's API key sees acme's proxies only" "$(names /api/v1/proxies "Authorization: Bearer $key")" '["acme-proxy","one"]'
check_eq "... the key belongs to acme" "$(db "SELECT org_id FROM api_keys WHERE name = 'acme-script'")" "2"
check_eq "the superadmin's key list for organisation 1 does not show it" \
	"$(lab_api GET /api/v1/api-keys -H "$ROOT_H" -H 'X-Pgw-Org: 1' | cut -d' ' -f2- | jq '[.items[] | select(.name == "acme-script")] | length')" "0"
check_match "... (while the key works)" "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")" '^200 '
db "DELETE FROM user_orgs WHERE user_id = $carol_id"
check_match "carol out of acme: her key stops working" "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")" '^401 '
finish
