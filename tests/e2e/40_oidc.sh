#!/usr/bin/env bash
# Scenario (issue 23): single sign-on with OpenID Connect. A real OpenID provider (npm
# oidc-provider, tests/web/oidc_op.mjs) on https with a private CA, and pgw-api, in the lab's gw
# namespace; Chromium (playwright-core) signs in through the provider: admins land on the
# dashboard as admin, staff as viewer and cannot write, a user with no mapped group is refused,
# logout ends the provider's session, a user who loses the group is refused and her sessions end.
# The provider rotates its keys (new key ids, ES256): logins go on. The provider down: a clear
# error, and only the break-glass admin signs in with a password. A hung provider does not hang
# the API. A misbehaving provider (tests/web/oidc_fake_op.mjs, http on loopback) is refused for a
# wrong signature, audience, issuer, an expired or future token, a replayed nonce, an unknown key,
# alg none, HS256 keyed with the public key; a replayed state or one from another browser too.
# Audit rows carry the subject and issuer.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
[ -d "$ROOT/tests/web/node_modules/oidc-provider" ] || { echo "not ok 1 - oidc-provider is installed (make deps)"; echo "1..1"; exit 1; }
lab_up || exit 1
lab_pgw_env
lab_api_env
ctl=$PGW_BIN/pgwctl
J='Content-Type: application/json'
U=http://127.0.0.1:8080
O=$LAB_DIR/oidc
mkdir -p "$O"
echo 'admin-password-1' | $ctl user add admin --role admin --password-stdin >/dev/null
echo 'carol-password-1' | $ctl user add carol --role viewer --password-stdin >/dev/null
sh "$ROOT/tests/e2e/oidc_mkcert.sh" "$O/certs" 127.0.0.1
# a 700-byte client secret (the setting takes a file of up to 1 KiB: its first line once was
# cut at 511 bytes, and every sign-in failed as invalid_client)
OSECRET="op-client-secret-1-$(printf 'k%.0s' $(seq 1 681))"
printf '%s\n' "$OSECRET" >"$O/secret"
chmod 600 "$O/secret"
echo '{"alice":{"groups":["admins"],"email":"alice@example.test"},"bob":{"groups":["staff"]},"dave":{"groups":["guests"]}}' >"$O/users.json"
export PGW_WEB_DIR=$ROOT/web
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
check "pgw-api listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
H=$(lab_api_login admin admin-password-1)
# start_op KEYS KID_PREFIX ALG LOG: the real provider on https://127.0.0.1:9443
start_op() {
	lab_bg gw "$4" env OP_ISSUER=https://127.0.0.1:9443 OP_HOST=127.0.0.1 OP_PORT=9443 OP_TLS_CERT="$O/certs/op.pem" \
		OP_TLS_KEY="$O/certs/op.key" OP_CLIENT_ID=pgw OP_CLIENT_SECRET="$OSECRET" \
		OP_REDIRECT_URI=$U/api/v1/auth/oidc/callback OP_POST_LOGOUT_URI=$U/ OP_KEYS="$1" OP_KID_PREFIX="$2" \
		OP_ALGS=RS256,ES256 OP_ID_TOKEN_ALG="$3" OP_USERS_FILE="$O/users.json" node "$ROOT/tests/web/oidc_op.mjs"
	OP_PID=$LAB_LAST_PID
	wait_for 20 grep -q 'op ready' "$LAB_DIR/$4.log"
}
check_re() { check_match "$1" "$3" "$2"; } # DESC REGEX TEXT: the pattern first, as it reads best here
check_is() { check_eq "$1" "$3" "$2"; }  # DESC WANT GOT
put_config() { lab_api PUT /api/v1/config -H "$H" -H "$J" -d "$1"; }
# sso_start JAR [BODY]: begin a login as a browser would; prints where pgw-api sends it ("<status>
# <url>"), the body in BODY (default $LAB_DIR/start-body)
sso_start() { lab_exec gw curl -s -m 20 -c "$1" -b "$1" -o "${2:-$LAB_DIR/start-body}" -w '%{http_code} %{redirect_url}' "$U/api/v1/auth/oidc/login"; }
# sso_back JAR URL [FILES]: the provider's redirect back, followed to pgw-api's callback with
# JAR's cookies: "<status> <location>", body in FILES-body, headers in FILES-head (FILES:
# $LAB_DIR/cb by default)
sso_back() {
	local f=${3:-$LAB_DIR/cb}
	lab_exec gw curl -s -m 20 -c "$1" -b "$1" -o "$f-body" -D "$f-head" -w '%{http_code} %{redirect_url}' "$2"
}
# sso_fake JAR [FILES]: a whole login against the fake provider; prints the callback's "<status>
# <location>" (its files as sso_back's, the callback's URL in FILES-url; FILES for logins at once)
sso_fake() {
	local s cb f=${2:-$LAB_DIR/cb}
	s=$(sso_start "$1" "${2:+$2-start}")
	cb=$(lab_exec gw curl -s -m 10 -o /dev/null -w '%{redirect_url}' "${s#* }")
	echo "$cb" >"$f-url"
	sso_back "$1" "$cb" "$f"
}

# --- settings and their checks ---------------------------------------------------------------
out=$(lab_api GET /api/v1/auth/methods)
check_is "GET /auth/methods without SSO: no provider" '200 null' \
	"$(cut -d' ' -f1 <<<"$out") $(cut -d' ' -f2- <<<"$out" | jq -r '.oidc')"
out=$(sso_start "$O/jar0")
check_re "an SSO login while none is configured: back to the login page, not_configured" \
	'^303 http://127.0.0.1:8080/\?sso_error=not_configured$' "$out"
out=$(put_config '{"oidc_issuer":"http://192.168.2.1:9443"}')
check_re "oidc_issuer over plain http off loopback: 400 naming loopback" '^400 .*only on loopback' "$out"
out=$(put_config '{"local_login":"breakglass","oidc_breakglass_user":"admin"}')
check_re "local_login breakglass without single sign-on: 400" '^400 .*needs single sign-on set up' "$out"
out=$(put_config "{\"oidc_issuer\":\"https://127.0.0.1:9443\",\"oidc_client_id\":\"pgw\",\"oidc_client_secret_file\":\"$O/secret\",\"oidc_role_map\":\"admins=admin, staff=viewer\",\"oidc_provider_name\":\"Acme ID\",\"oidc_scopes\":\"openid profile email groups\"}")
check_re "SSO configured through PUT /api/v1/config" '^200 ' "$out"
out=$(put_config '{"local_login":"breakglass"}')
check_re "local_login breakglass without a break-glass user: 400" '^400 .*needs oidc_breakglass_user' "$out"
out=$(put_config '{"local_login":"breakglass","oidc_breakglass_user":"carol"}')
check_re "a break-glass user who is no superadmin (carol, a viewer): 400" \
	"^400 .*'carol' is not an enabled local superadmin" "$out"
out=$(lab_api GET /api/v1/auth/methods)
check_is "GET /auth/methods names the provider and the login URL" 'Acme ID /api/v1/auth/oidc/login' \
	"$(cut -d' ' -f2- <<<"$out" | jq -r '"\(.oidc.name) \(.oidc.login_url)"')"

check "the provider (oidc-provider, https, private CA) is up" start_op "$O/keys1.json" k1 RS256 oidc-op1
out=$(sso_start "$O/jar0")
check_re "the provider's certificate from a private CA without oidc_ca_file: refused (provider_unavailable)" \
	'^303 .*sso_error=provider_unavailable' "$out"
check_re "... and the reason names the certificate" 'certificate' "$(cat "$LAB_DIR/start-body")"
out=$(put_config "{\"oidc_ca_file\":\"$O/certs/ca.pem\"}")
check_re "oidc_ca_file set" '^200 ' "$out"
out=$(sso_start "$O/jar1")
check_re "a login begins: 303 to the provider's authorization endpoint" '^303 https://127.0.0.1:9443/auth\?' "$out"
loc=${out#* }
for p in response_type=code client_id=pgw 'redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fapi%2Fv1%2Fauth%2Foidc%2Fcallback' \
	'scope=openid%20profile%20email%20groups' 'state=[A-Za-z0-9_-]\{43\}' 'nonce=[A-Za-z0-9_-]\{43\}' \
	'code_challenge=[A-Za-z0-9_-]\{43\}' code_challenge_method=S256; do
	check "... with $(cut -d= -f1 <<<"$p")" grep -q "[?&]$p\(&\|$\)" <<<"$loc"
done
sc=$(lab_exec gw curl -s -m 10 -D - -o /dev/null "$U/api/v1/auth/oidc/login" | grep -i '^set-cookie')
check_re "the state cookie is HttpOnly and SameSite=Lax (it must come back on the provider's redirect)" \
	'pgw_oidc=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600' "$sc"
check_fails "... and not Secure on plain HTTP (a browser there would not keep it)" grep -qi '; Secure' <<<"$sc"
# behind a TLS proxy (PGW_TLS_OFFLOAD: the browser's side is HTTPS) the state cookie is Secure
PGW_RUN_DIR=$LAB_DIR/run-offload PGW_TLS_OFFLOAD=true PGW_API_LISTEN=127.0.0.1:8085 lab_bg gw pgw-api-offload "$PGW_BIN/pgw-api"
check "a second pgw-api with PGW_TLS_OFFLOAD=true" wait_for 10 grep -q 'listening on http://127.0.0.1:8085' "$LAB_DIR/pgw-api-offload.log"
check_re "... its state cookie is Secure, HttpOnly and SameSite=Lax" \
	'^[Ss]et-[Cc]ookie: pgw_oidc=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600; Secure' \
	"$(lab_exec gw curl -s -m 10 -D - -o /dev/null http://127.0.0.1:8085/api/v1/auth/oidc/login | grep -i '^set-cookie')"
lab_stop_pid "$LAB_LAST_PID"

# --- the browser -------------------------------------------------------------------------------
webrun() { # phase
	(cd "$ROOT/tests/web" && URL=$U USERS_FILE="$O/users.json" ADMIN_PASSWORD=admin-password-1 LOCAL_USER=carol \
		LOCAL_PASSWORD=carol-password-1 PROVIDER='Acme ID' timeout 240 ip netns exec "$(lab_ns gw)" node oidc.mjs "$1") \
		>"$LAB_DIR/web-$1.out" 2>&1
	local rc=$?
	sed 's/^/# /' "$LAB_DIR/web-$1.out"
	check "browser, $1: every check passes ($(grep -c '^ok' "$LAB_DIR/web-$1.out") of $(grep -c '^\(not \)\?ok' "$LAB_DIR/web-$1.out"))" test $rc -eq 0
}
# the admin's event stream meanwhile: an SSO login (a user made, or its roles rewritten) and a
# revocation each send the orgs event (pages ask /me again)
ip netns exec "$(lab_ns gw)" curl -s -N -m 280 -H "$H" "$U/api/v1/events" >"$LAB_DIR/sse-sso" &
sse_pid=$!
webrun login
sleep 0.5 # (the last event's way to the stream)
kill "$sse_pid" 2>/dev/null
wait "$sse_pid" 2>/dev/null
orgs_events=$(grep -c '^event: orgs$' "$LAB_DIR/sse-sso")
check "the admin's stream got the orgs event at alice's and bob's logins and alice's revocation ($orgs_events; 2 were only the users made)" \
	test "$orgs_events" -ge 3
check_is "alice is an SSO user of this issuer and subject" "https://127.0.0.1:9443|alice" \
	"$(lab_db "SELECT sso_issuer, sso_subject FROM users WHERE username = 'alice'")"
check_is "... who, refused once her group was gone, holds no role here any more (not superadmin, no organisation)" \
	"0|viewer|0" \
	"$(lab_db "SELECT superadmin || '|' || role || '|' || (SELECT count(*) FROM user_orgs WHERE user_id = users.id) FROM users WHERE username = 'alice'")"
check_is "bob is a viewer" "viewer" "$(lab_db "SELECT role FROM users WHERE username = 'bob'")"
check_is "GET /users tells alice's issuer and subject, and none for the local admin" \
	'[{"issuer":"https://127.0.0.1:9443","subject":"alice"},null]' \
	"$(lab_api GET /api/v1/users -H "$H" | cut -d' ' -f2- | jq -c '[(.items[] | select(.username == "alice") | .sso), (.items[] | select(.username == "admin") | .sso)]')"
check_is "dave was never made a user" "0" "$(lab_db "SELECT count(*) FROM users WHERE username = 'dave'")"
check_re "audit: alice's SSO login with issuer and subject" '"iss":"https://127.0.0.1:9443".*"sub":"alice"' \
	"$(lab_db "SELECT after_json FROM audit WHERE action = 'login.sso' AND username = 'alice' AND result = 'ok' LIMIT 1")"
check_re "audit: dave refused (no_role) with issuer and subject" '"error":"no_role".*"iss":"https://127.0.0.1:9443".*"sub":"dave"' \
	"$(lab_db "SELECT after_json FROM audit WHERE action = 'login.sso' AND result = 'denied' AND after_json LIKE '%dave%' LIMIT 1")"
check_re "audit: alice refused once her group was gone" '"error":"no_role"' \
	"$(lab_db "SELECT after_json FROM audit WHERE action = 'login.sso' AND username = 'alice' AND result = 'denied' LIMIT 1")"
# even with a real password hash in its row, an SSO user does not sign in with a password
lab_db "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE username = 'admin') WHERE username = 'alice'"
out=$(lab_api POST /api/v1/auth/login -H "$J" -d '{"username":"alice","password":"admin-password-1"}')
check_re "an SSO user has no password here: a password login with the very password of its hash: 401" '^401 ' "$out"
alice_id=$(lab_db "SELECT id FROM users WHERE username = 'alice'")
out=$(lab_api PUT "/api/v1/users/$alice_id/password" -H "$H" -H "$J" -d '{"password":"a-new-password-1"}')
check_re "setting an SSO user's password: 400, it has none here" '^400 .*signs in through the OpenID provider' "$out"

# --- key rotation --------------------------------------------------------------------------------
check_re "pgw-api holds the provider's first keys" 'k1-rs256' "$(grep 'sso: keys from' "$LAB_DIR/pgw-api.log" | tail -1)"
lab_stop_pid "$OP_PID"
check "the provider restarted with new keys only (k2-*, ES256 ID tokens)" start_op "$O/keys2.json" k2 ES256 oidc-op2
webrun rotate
check_re "pgw-api fetched the new keys when the token named an unknown key id" 'a token named another key.*k2-es256' \
	"$(grep 'sso: keys from' "$LAB_DIR/pgw-api.log" | tail -1)"

# --- the provider down: break-glass ----------------------------------------------------------
out=$(put_config '{"local_login":"breakglass","oidc_breakglass_user":"admin"}')
check_re "local_login breakglass with the break-glass admin" '^200 ' "$out"
admin_id=$(lab_db "SELECT id FROM users WHERE username = 'admin'")
check_re "the break-glass admin cannot be deleted meanwhile: 409" '^409 .*break-glass user' \
	"$(lab_api DELETE "/api/v1/users/$admin_id" -H "$H")"
check_re "... nor disabled: 409" '^409 .*break-glass user' \
	"$(lab_api PATCH "/api/v1/users/$admin_id" -H "$H" -H "$J" -d '{"disabled":true}')"
check_re "... nor demoted: 409" '^409 .*break-glass user' \
	"$(lab_api PATCH "/api/v1/users/$admin_id" -H "$H" -H "$J" -d '{"superadmin":false}')"
check_re "... and single sign-on cannot be switched off under it: 400" '^400 .*needs single sign-on' \
	"$(put_config '{"oidc_issuer":""}')"
lab_stop_pid "$OP_PID"
t0=$(lab_ms)
out=$(sso_start "$O/jar2")
dt=$(($(lab_ms) - t0))
check_re "the provider down: a login comes back with provider_unavailable" '^303 .*sso_error=provider_unavailable' "$out"
check "... at once, not after a timeout ($dt ms; nothing listens: refused)" test "$dt" -lt 2500
check_re "... and says which provider cannot be reached" 'Acme ID cannot be reached' "$(cat "$LAB_DIR/start-body")"
webrun down
out=$(lab_api POST /api/v1/auth/login -H "$J" -d '{"username":"carol","password":"carol-password-1"}')
check_re "API: carol's password login while breakglass: 403 password_login_off" '^403 .*password_login_off' "$out"
out=$(lab_api POST /api/v1/auth/login -H "$J" -d '{"username":"carol","password":"not-her-password"}')
check_re "... but a wrong password gets the usual 401 (names cannot be tried to find the break-glass user)" '^401 ' "$out"
out=$(lab_api POST /api/v1/auth/login -H "$J" -d '{"username":"admin","password":"admin-password-1"}')
check_re "API: the break-glass admin's password login: 200" '^200 ' "$out"

# --- a hung provider does not hang the API ---------------------------------------------------
lab_bg gw hung python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 9444)); s.listen(64)
held=[]
while True: held.append(s.accept()[0])'
HUNG_PID=$LAB_LAST_PID
lab_wait_port gw 127.0.0.1 9444
check_re "oidc_issuer: a provider that accepts and never answers (http on loopback)" '^200 ' \
	"$(put_config '{"oidc_issuer":"http://127.0.0.1:9444"}')"
t0=$(lab_ms)
(sso_start "$O/jar3" "$LAB_DIR/hung1.body" >"$LAB_DIR/hung.out") &
hung1=$!
sleep 1
(sso_start "$O/jar4" "$LAB_DIR/hung2.body" >"$LAB_DIR/hung2.out") &
hung2=$!
t=$(lab_ms)
out=$(lab_api GET /api/v1/me -H "$H")
dt=$(($(lab_ms) - t))
check_re "while two logins wait on the hung provider, the API answers" '^200 ' "$out"
check "... at once ($dt ms), both logins still waiting" bash -c "[ $dt -lt 2000 ] && kill -0 $hung1 && kill -0 $hung2"
wait "$hung1"
t1=$(lab_ms)
wait "$hung2"
t2=$(lab_ms)
check_re "the login gives up with provider_unavailable instead of hanging" '^303 .*sso_error=provider_unavailable' "$(cat "$LAB_DIR/hung.out")"
check_re "... on the timeout" 'timed out|Timeout' "$(jq -r .error.message "$LAB_DIR/hung1.body")"
check "... after the provider timeout (5 s), not before and not long after ($((t1 - t0)) ms)" \
	bash -c "[ $((t1 - t0)) -ge 4500 ] && [ $((t1 - t0)) -lt 8000 ]"
check_re "a second login at the same time gives up on its own, not after the first ($((t2 - t0 - 1000)) ms)" \
	'^303 .*sso_error=provider_unavailable' "$(cat "$LAB_DIR/hung2.out")"
check "... within 7 s of its start (one after the other would be about 9)" test $((t2 - t0 - 1000)) -lt 7000
lab_stop_pid "$HUNG_PID"

# --- a misbehaving provider ------------------------------------------------------------------
# a local user already has the name the fake provider's user prefers (preferred_username fakeuser)
echo 'fakeuser-password-1' | $ctl user add fakeuser --role viewer --password-stdin >/dev/null
lab_bg gw oidc-fake env FAKE_PORT=9090 FAKE_CLIENT_ID=pgw FAKE_KEYS="$O/fake-keys.json" node "$ROOT/tests/web/oidc_fake_op.mjs"
check "the fake provider is up" wait_for 20 grep -q 'fake ready' "$LAB_DIR/oidc-fake.log"
out=$(put_config '{"oidc_issuer":"http://127.0.0.1:9090","oidc_ca_file":"","local_login":"on"}')
check_re "an http issuer on loopback is accepted" '^200 ' "$out"
mode() { lab_exec gw curl -s -m 5 "http://127.0.0.1:9090/mode?m=$1&query=${2:-}" >/dev/null; } # [query, URL-encoded]
mode good
out=$(sso_fake "$O/jarf")
check_re "the fake provider's good token: signed in (303 to /?sso=ok)" '^303 http://127.0.0.1:8080/\?sso=ok$' "$out"
check "... with the session cookie" grep -qi '^set-cookie: pgw_session=' "$LAB_DIR/cb-head"
check_is "an SSO user never joins the local user of its name: it is fakeuser-2, the local fakeuser untouched" \
	'fakeuser-2|1|viewer' \
	"$(lab_db "SELECT (SELECT username FROM users WHERE sso_subject = 'fake-user') || '|' || (SELECT sso_issuer IS NULL FROM users WHERE username = 'fakeuser') || '|' || (SELECT role FROM users WHERE username = 'fakeuser')")"
good_cb=$(cat "$LAB_DIR/cb-url")
out=$(sso_back "$O/jarf" "$good_cb")
check_re "the same answer (state) again: refused, bad_state" '^303 .*sso_error=bad_state$' "$out"
check "... and no session" bash -c "! grep -qi '^set-cookie: pgw_session=[^;]' '$LAB_DIR/cb-head'"
s=$(sso_start "$O/jara")
sso_start "$O/jarb" >/dev/null # the other browser has a binding cookie of its own
cb=$(lab_exec gw curl -s -m 10 -o /dev/null -w '%{redirect_url}' "${s#* }")
out=$(sso_back "$O/jarb" "$cb")
check_re "a state begun in another browser: refused, bad_state" '^303 .*sso_error=bad_state$' "$out"
check_re "... saying so" 'begun in another browser' "$(cat "$LAB_DIR/cb-body")"
check "... and no session" bash -c "! grep -qi '^set-cookie: pgw_session=[^;]' '$LAB_DIR/cb-head'"
s=$(sso_start "$O/jarf")
cb=$(lab_exec gw curl -s -m 10 -o /dev/null -w '%{redirect_url}' "${s#* }")
check_re "an answer carrying another provider's iss (RFC 9207 mix-up): wrong_issuer" '^303 .*sso_error=wrong_issuer$' \
	"$(sso_back "$O/jarf" "$cb&iss=http%3A%2F%2Fevil.example")"
state=$(grep -o 'state=[A-Za-z0-9_-]*' <<<"$(sso_start "$O/jarf")" | head -1)
check_re "the provider answers error=access_denied: provider_refused, with its words" '^303 .*sso_error=provider_refused$' \
	"$(sso_back "$O/jarf" "$U/api/v1/auth/oidc/callback?$state&error=access_denied&error_description=User%20said%20no")"
check_re "... saying so" 'refused the sign-in: access_denied: User said no' "$(jq -r .error.message "$LAB_DIR/cb-body")"
# the client secret file: only a file of the owner's alone, and never one of the gateway's own secrets
chmod 644 "$O/secret"
check_re "a client secret file others may read: refused (not_configured), the secret never sent" '^303 .*sso_error=not_configured$' \
	"$(sso_fake "$O/jarf")"
check_re "... saying mode 0600" 'mode 0600' "$(jq -r .error.message "$LAB_DIR/cb-body")"
printf '%s\n' "$PGW_JWT_SECRET" >"$O/jwt-copy"
chmod 600 "$O/jwt-copy"
put_config "{\"oidc_client_secret_file\":\"$O/jwt-copy\"}" >/dev/null
check_re "oidc_client_secret_file naming the JWT secret: refused, never sent to the provider" '^303 .*sso_error=not_configured$' \
	"$(sso_fake "$O/jarf")"
check_re "... saying it is one of the gateway's own secrets" "gateway's own secrets" "$(jq -r .error.message "$LAB_DIR/cb-body")"
chmod 600 "$O/secret"
put_config "{\"oidc_client_secret_file\":\"$O/secret\"}" >/dev/null
# a discovery document that names another issuer than the one configured
put_config '{"oidc_issuer":"http://localhost:9090"}' >/dev/null
check_re "a discovery document naming another issuer: provider_unavailable" '^303 .*sso_error=provider_unavailable' \
	"$(sso_start "$O/jarf")"
check_re "... saying which" "names issuer 'http://127.0.0.1:9090', not oidc_issuer 'http://localhost:9090'" \
	"$(jq -r .error.message "$LAB_DIR/start-body")"
put_config '{"oidc_issuer":"http://127.0.0.1:9090"}' >/dev/null
# an API key made by an SSO admin stops when the provider takes the role away
mode good
sso_fake "$O/jarf" >/dev/null
csrf=$(lab_exec gw curl -s -m 10 -b "$O/jarf" "$U/api/v1/me" | jq -r .csrf_token)
key=$(lab_exec gw curl -s -m 10 -b "$O/jarf" -H "X-CSRF-Token: $csrf" -H "$J" -d '{"name":"fake-script","role":"admin"}' \
	"$U/api/v1/api-keys" | jq -r .key)
check_re "fakeuser-2 (SSO admin) made an API key that works" '^200 ' "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")"
mode nogroups
check_re "the provider takes fakeuser-2's group away: the next sign-in is refused (no_role)" '^303 .*sso_error=no_role$' \
	"$(sso_fake "$O/jarf")"
check_re "... its session ends" '^401 ' "$(lab_api GET /api/v1/me -b "$O/jarf")"
check_re "... and so does its API key" '^401 ' "$(lab_api GET /api/v1/proxies -H "Authorization: Bearer $key")"
check_is "... it keeps no role here" '0|viewer|0' \
	"$(lab_db "SELECT superadmin || '|' || role || '|' || (SELECT count(*) FROM user_orgs WHERE user_id = users.id) FROM users WHERE sso_subject = 'fake-user'")"
mode es256
check_re "an ES256 token: signed in" '^303 http://127.0.0.1:8080/\?sso=ok$' "$(sso_fake "$O/jarf")"
mode good tenant%3Dlab
check_re "a token endpoint and jwks_uri with a query (?tenant=lab, answered only with it): signed in" \
	'^303 http://127.0.0.1:8080/\?sso=ok$' "$(sso_fake "$O/jarf")"
# a JWKS endpoint that hangs (a new jwks_uri: no keys held for it): three sign-ins at once wait for
# one fetch, not one each, and the failure is remembered
mode "good&jwks=hang" tenant%3Dhung
asked0=$(lab_exec gw curl -s -m 5 http://127.0.0.1:9090/jwks-asked)
signins=()
for i in 1 2 3; do
	sso_fake "$O/jarh$i" "$LAB_DIR/hungk$i" >"$LAB_DIR/hungk$i.out" &
	signins+=($!)
done
wait "${signins[@]}"
check_is "three sign-ins at once while the JWKS endpoint hangs: all refused (bad_token)" 3 \
	"$(grep -ho 'sso_error=bad_token$' "$LAB_DIR"/hungk[123].out | wc -l)"
check_is "... after one fetch of the keys, not one each" 1 \
	"$(($(lab_exec gw curl -s -m 5 http://127.0.0.1:9090/jwks-asked) - asked0))"
check_is "... the others told of its failure (not asked again within 30 s)" 2 \
	"$(cat "$LAB_DIR"/hungk[123]-body | jq -r .error.message | grep -c 'asked again 30 s after')"
for m in "badsig:signature does not verify" "aud:is for another client" "iss:another issuer" "expired:has expired" \
	"futureiat:issued in the future" "nonce:nonce is not this login's" "unknownkid:a key the provider does not publish" \
	"none:signed with none: only RS256 and ES256" "hs256pem:signed with HS256: only RS256 and ES256"; do
	mode "${m%%:*}"
	out=$(sso_fake "$O/jarf")
	check_re "token ${m%%:*}: refused, bad_token" '^303 .*sso_error=bad_token$' "$out"
	check_re "... saying: ${m#*:}" "${m#*:}" "$(jq -r .error.message "$LAB_DIR/cb-body")"
	check "... and no session" bash -c "! grep -qi '^set-cookie: pgw_session=[^;]' '$LAB_DIR/cb-head'"
done
# organisation roles: with two organisations, "admins" maps to Org B's admin; the provider's word
# replaces what fakeuser-2 had (a superadmin while the gateway had one organisation)
mode good
check_is "fakeuser-2 was a superadmin while the gateway had one organisation" 1 \
	"$(lab_db "SELECT superadmin FROM users WHERE sso_subject = 'fake-user'")"
out=$(lab_api POST /api/v1/orgs -H "$H" -H "$J" -d '{"name":"Org B"}')
check_re "a second organisation, Org B" '^201 ' "$out"
out=$(put_config '{"oidc_role_map":"admins=Org B:admin, staff=viewer"}')
check_re "oidc_role_map names Org B's admin role" '^200 ' "$out"
check_re "fakeuser-2 signs in again" '^303 http://127.0.0.1:8080/\?sso=ok$' "$(sso_fake "$O/jarf")"
check_is "... now Org B's admin only: no superadmin, no other organisation" '0|Org B:admin' \
	"$(lab_db "SELECT u.superadmin || '|' || group_concat(o.name || ':' || uo.role) FROM users u JOIN user_orgs uo ON uo.user_id = u.id JOIN orgs o ON o.id = uo.org_id WHERE u.sso_subject = 'fake-user'")"
out=$(lab_exec gw curl -s -m 10 -o "$LAB_DIR/cb-body" -w '%{http_code} %{redirect_url}' "$U/api/v1/auth/oidc/callback?code=x")
check_re "a callback without state: bad_state" '^303 .*sso_error=bad_state$' "$out"
check_is "every refused token left an audit row with the reason (9 tokens, 3 without keys)" 12 \
	"$(lab_db "SELECT count(*) FROM audit WHERE action = 'login.sso' AND result = 'denied' AND after_json LIKE '%bad_token%'")"
# refusals of sign-ins begun from one address: the first 50 audited (with the address), the rest
# logged only, so sign-ins begun and answered wrong cannot fill the audit log; sign-ins go on
denied() { lab_db "SELECT count(*) FROM audit WHERE action = 'login.sso' AND result = 'denied'"; }
echo "# $(denied) refused sign-ins audited so far (all begun from 127.0.0.1)"
for i in $(seq 1 60); do
	state=$(grep -o 'state=[A-Za-z0-9_-]*' <<<"$(sso_start "$O/jart")" | head -1)
	sso_back "$O/jart" "$U/api/v1/auth/oidc/callback?$state&error=access_denied&error_description=flood%20$i" >/dev/null
done
flood=$(lab_db "SELECT count(*) FROM audit WHERE action = 'login.sso' AND result = 'denied' AND after_json LIKE '%flood %'")
echo "# of 60 more refused, $flood audited; $(denied) in all"
check "60 more sign-ins begun and answered error=: at most 50 audited ($flood)" test "$flood" -ge 1 -a "$flood" -le 50
check_re "... each audited row names the address it was begun from" '"begun_from":"127.0.0.1"' \
	"$(lab_db "SELECT after_json FROM audit WHERE action = 'login.sso' AND result = 'denied' ORDER BY id DESC LIMIT 1")"
check "... the rest logged, saying why" grep -q 'not audited: more than 50 refused sign-ins begun from 127.0.0.1' "$LAB_DIR/pgw-api.log"
check "... and the last one was refused as the provider said, not held back" grep -q 'flood 60' "$LAB_DIR/pgw-api.log"
check_re "... a sign-in still begins (303 to the provider)" '^303 http://127.0.0.1:9090/auth\?' "$(sso_start "$O/jart")"
check "pgw-api never logged a token (no eyJ... in its log)" bash -c "! grep -q 'eyJ' '$LAB_DIR/pgw-api.log'"
check "pgw-api never logged the client secret" bash -c "! grep -q op-client-secret-1 '$LAB_DIR/pgw-api.log'"
check "... nor the JWT secret (the file that held a copy of it was refused, not read out)" \
	bash -c "! grep -qF '$PGW_JWT_SECRET' '$LAB_DIR/pgw-api.log'"
finish
