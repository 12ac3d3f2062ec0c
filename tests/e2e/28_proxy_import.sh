#!/usr/bin/env bash
# Scenario (issue 18): bulk proxies. 1,000 proxies imported from CSV with a dry run (nothing
# stored), then for real, then again (all unchanged), exported (no password in it) and the
# export imported back (unchanged); proxy URIs (socks5://, socks5h://, http://, %-escaped
# credentials, IPv6 in brackets); per-line errors change nothing; a password left out is kept
# while the proxy stays where it is and dropped when it moves.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_scenario
lab_api_env
echo 'admin-password-1' | "$PGW_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
lab_bg gw pgw-api "$PGW_BIN/pgw-api"
check "pgw-api listening" wait_for 5 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
ADMIN=$(lab_api_login admin admin-password-1)
body() { cut -d' ' -f2-; }
import() { # content-type file [query]
	lab_api POST "/api/v1/proxies/import${3:-}" -H "$ADMIN" -H "Content-Type: $1" --data-binary "@$2"
}
total() { lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq .total; }
summary() { body | jq -c '[.dry_run, .rows, .created, .updated, .unchanged]'; }

{
	echo "name,type,host,port,username,password,expected_exit"
	for i in $(seq 1 1000); do
		if ((i % 2)); then t=socks5; else t=http; fi
		printf 'bulk-%04d,%s,198.51.%d.%d,%d,user%d,secret-%d,"198.51.%d.0/24 2001:db8:%x::/48"\n' \
			"$i" "$t" $((i / 250)) $((i % 250 + 1)) $((1080 + i % 3)) "$i" "$i" $((i / 250)) "$i"
	done
} >"$LAB_DIR/bulk.csv"
t0=$(lab_ms)
check_eq "a dry run of 1,000 proxies: all would be created" "$(import text/csv "$LAB_DIR/bulk.csv" '?dry_run=true' | summary)" '[true,1000,1000,0,0]'
echo "# dry run of 1,000 lines: $(($(lab_ms) - t0)) ms"
check_eq "... and nothing is stored" "$(total)" "0"
t0=$(lab_ms)
check_eq "imported for real: 1,000 created" "$(import text/csv "$LAB_DIR/bulk.csv" | summary)" '[false,1000,1000,0,0]'
echo "# import of 1,000 lines: $(($(lab_ms) - t0)) ms"
check_eq "... 1,000 proxies listed" "$(total)" "1000"
check_eq "... each as written: type, address, user, a password, expected exit" \
	"$(lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq -c '.items[] | select(.name == "bulk-0002") | [.type, .host, .port, .username, .has_password, .expected_exit]')" \
	'["http","198.51.0.3",1082,"user2",true,["198.51.0.0/24","2001:db8:2::/48"]]'
check_eq "a dry run of the same file: every line with a password counts as updated (a dry run never compares passwords)" \
	"$(import text/csv "$LAB_DIR/bulk.csv" '?dry_run=true' | summary)" '[true,1000,0,1000,0]'
check_eq "the same file again: 1,000 unchanged" "$(import text/csv "$LAB_DIR/bulk.csv" | summary)" '[false,1000,0,0,1000]'
lab_api GET /api/v1/proxies/export -H "$ADMIN" | body >"$LAB_DIR/export.csv"
check_eq "the export: a header and 1,000 lines" "$(wc -l <"$LAB_DIR/export.csv")" "1001"
check_eq "... never a password" "$(head -1 "$LAB_DIR/export.csv" | tr -d '\r'),$(grep -c secret- "$LAB_DIR/export.csv")" \
	"name,type,host,port,username,expected_exit,0"
check_eq "the export imported back: all unchanged (the passwords stay)" "$(import text/csv "$LAB_DIR/export.csv" | summary)" '[false,1000,0,0,1000]'
check_eq "... every proxy still has its password" \
	"$(lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq '[.items[] | select(.has_password)] | length')" "1000"

# a moved proxy loses the stored password unless given again
printf 'name,type,host,port\nbulk-0001,socks5,198.51.100.77,1080\n' >"$LAB_DIR/move.csv"
check_eq "a proxy moved by an import (no password given): updated" "$(import text/csv "$LAB_DIR/move.csv" | summary)" '[false,1,0,1,0]'
check_eq "... its stored password and user are gone (credentials never follow a new endpoint)" \
	"$(lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq -c '.items[] | select(.name == "bulk-0001") | [.host, .username, .has_password]')" \
	'["198.51.100.77","",false]'

# URIs
cat >"$LAB_DIR/uris.txt" <<'URIS'
# a comment, then an empty line

socks5://alice:p%40ss%3Aword@198.51.100.10:1080#nl-1
socks5h://proxy.example:1080
http://[2001:db8::10]:8080#v6-http
URIS
check_eq "three proxy URIs (comments and empty lines skipped)" "$(import text/plain "$LAB_DIR/uris.txt" | summary)" '[false,3,3,0,0]'
check_eq "... the credentials %-decoded, the names given or host:port" \
	"$(lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq -c '[.items[] | select(.name == "nl-1" or .name == "proxy.example:1080" or .name == "v6-http") | [.name, .type, .host, .port, .username, .has_password]]')" \
	'[["nl-1","socks5","198.51.100.10",1080,"alice",true],["proxy.example:1080","socks5","proxy.example",1080,"",false],["v6-http","http","2001:db8::10",8080,"",false]]'

check_eq "... the password stored decoded" "$(lab_db "SELECT password FROM proxies WHERE name = 'nl-1'")" "p@ss:word"

# what a line leaves out is kept: a URI re-import (to rotate a password) keeps the pinning
lab_api PATCH /api/v1/proxies/$(lab_api GET /api/v1/proxies -H "$ADMIN" | body | jq '.items[] | select(.name == "nl-1") | .id') \
	-H "$ADMIN" -H 'Content-Type: application/json' -d '{"expected_exit":["198.51.100.10"]}' >/dev/null
printf 'socks5://alice:new-secret@198.51.100.10:1080#nl-1\n' >"$LAB_DIR/rotate.txt"
check_eq "a URI re-import with a new password: updated" "$(import text/plain "$LAB_DIR/rotate.txt" | summary)" '[false,1,0,1,0]'
check_eq "... the new password stored, the expected exit and the user kept" \
	"$(lab_db "SELECT password || ' ' || expected_exit || ' ' || username FROM proxies WHERE name = 'nl-1'")" "new-secret 198.51.100.10/32 alice"

# bad lines: every one reported, nothing imported
printf 'name,type,host,port\nok-1,socks5,198.51.100.9,1080\nbad-port,socks5,198.51.100.2,70000\nbad-type,ftp,198.51.100.3,21\nok-1,http,198.51.100.4,3128\n' >"$LAB_DIR/bad.csv"
out=$(import text/csv "$LAB_DIR/bad.csv")
check_match "a file with bad lines: 400" "$out" '^400 '
check_eq "... each bad line named with its reason" \
	"$(body <<<"$out" | jq -c '[.error.lines[] | [.line, (.error | test("port|type|twice"))]]')" '[[3,true],[4,true],[5,true]]'
check_eq "... and nothing of it imported" "$(total)" "1003"
printf 'socks5://198.51.100.9:1080#good\n\n\nsocks5://198.51.100.9#no-port\nftp://x:1\nsocks5://u:p#w@198.51.100.9:1080\n' >"$LAB_DIR/bad.txt"
out=$(import text/plain "$LAB_DIR/bad.txt")
check_match "bad URIs (after two blank lines, and a '#' in a password): 400" "$out" '^400 '
check_eq "... with their own line numbers" "$(body <<<"$out" | jq -c '[.error.lines[].line]')" '[4,5,6]'
printf 'socks5://198.51.100.9:1080#caf\xe9\n' >"$LAB_DIR/latin1.txt"
check_match "a name that is not UTF-8: 400, said so" "$(import text/plain "$LAB_DIR/latin1.txt")" '^400 .*not UTF-8'
printf 'name,type,host,port,expected_exit\nnl-1,socks5,198.51.100.10,1080,\xff\n' >"$LAB_DIR/latin1.csv"
check_match "a CSV whose expected_exit is not UTF-8: 400 naming the line" "$(import text/csv "$LAB_DIR/latin1.csv")" \
	'^400 .*line 2: not UTF-8'
check_eq "... and the proxy's pinning is kept (the old import stored it as none)" \
	"$(lab_db "SELECT expected_exit FROM proxies WHERE name = 'nl-1'")" "198.51.100.10/32"
printf 'name,type,host,port,host\nnl-1,socks5,198.51.100.99,1080,203.0.113.99\n' >"$LAB_DIR/twice.csv"
check_match "a CSV naming a column twice: 400 saying so (it used to call the first one unknown)" \
	"$(import text/csv "$LAB_DIR/twice.csv")" "^400 .*line 1: column 'host' appears twice"
check_eq "... and the proxy is where it was" "$(lab_db "SELECT host FROM proxies WHERE name = 'nl-1'")" "198.51.100.10"
check_match "another content type: 415" "$(import application/json "$LAB_DIR/bad.txt")" '^415 '
check_eq "the audit has the imports" \
	"$(lab_api GET '/api/v1/audit?action=proxy.import' -H "$ADMIN" | body | jq '.items | length')" "6"

# the largest proxy the API takes goes every way: a 255-byte login, a 248-character host, 17
# expected exits (its export field 287 bytes: once more than an import read), a URI with a
# %-escaped 255-byte password (765 characters of it: once more than a URI line could hold)
J='Content-Type: application/json'
rep() { printf "$1%.0s" $(seq 1 "$2"); }
U=$(rep u 255) P=$(rep p 255) H="$(rep a 60).$(rep b 60).$(rep c 60).$(rep d 60).test"
EXITS=$(for i in $(seq 1 17); do printf '"198.51.100.%d",' "$i"; done | sed 's/,$//')
check_match "POST the largest HTTP proxy (255-byte user and password, 248-character host, 17 exits): 201" \
	"$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d "{\"name\":\"largest\",\"type\":\"http\",\"host\":\"$H\",\"port\":3128,\"username\":\"$U\",\"password\":\"$P\",\"expected_exit\":[$EXITS]}")" '^201 '
lab_api GET /api/v1/proxies/export -H "$ADMIN" | body >"$LAB_DIR/export2.csv"
check "... its export line holds it all (17 exits)" grep -q "^largest,http,$H,3128,$U,\"198.51.100.1/32,.*,198.51.100.17/32\"" "$LAB_DIR/export2.csv" ||
	grep '^largest' "$LAB_DIR/export2.csv" | cut -c1-40,500-900 | sed 's/^/# /'
out=$(import text/csv "$LAB_DIR/export2.csv")
check_eq "... and imports back unchanged" "$(summary <<<"$out")" '[false,1004,0,0,1004]' || echo "# $(cut -c1-300 <<<"$out")"
printf 'socks5://%s:%s@198.51.100.77:1080#escaped\n' "$U" "$(for _ in $(seq 1 255); do printf '%%40'; done)" >"$LAB_DIR/long-uri.txt"
check_eq "a $(wc -c <"$LAB_DIR/long-uri.txt")-byte URI (a password of 255 %-escaped @): imported" "$(import text/plain "$LAB_DIR/long-uri.txt" | summary)" '[false,1,1,0,0]'
check_eq "... the password stored decoded (255 bytes)" "$(lab_db "SELECT length(password), substr(password, 1, 3) FROM proxies WHERE name = 'escaped'")" "255|@@@"
# ... and what does not fit the wire is refused, saying why, in bytes
check_match "a password of 128 two-byte letters (256 bytes; SOCKS5 takes 255): 400" \
	"$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d "{\"name\":\"umlauts\",\"type\":\"socks5\",\"host\":\"198.51.100.7\",\"port\":1080,\"username\":\"u\",\"password\":\"$(rep ä 128)\"}")" \
	"^400 .*'password' is longer than 255 bytes \(UTF-8\): 256"
check_match "a host that is not ASCII: 400, naming the IDNA form" \
	"$(lab_api POST /api/v1/proxies -H "$ADMIN" -H "$J" -d '{"name":"idn","type":"socks5","host":"bücher.example","port":1080}')" "^400 .*'host' must be ASCII.*xn--"
check_eq "... neither stored" "$(lab_db "SELECT count(*) FROM proxies WHERE name IN ('umlauts', 'idn')")" 0
id=$(lab_db "SELECT id FROM proxies WHERE name = 'largest'")
check_match "PATCH an HTTP proxy's username to one with ':' (Basic auth cannot carry it): 400" \
	"$(lab_api PATCH "/api/v1/proxies/$id" -H "$ADMIN" -H "$J" -d '{"username":"a:b"}')" "^400 .*cannot contain ':'"
check_eq "... the user kept" "$(lab_db "SELECT length(username) FROM proxies WHERE id = $id")" 255
# a user's password is counted in characters too: 256 two-byte letters are a good one
pw=$(rep ä 256)
check_match "a user with a password of 256 two-byte letters (512 bytes): 201" \
	"$(lab_api POST /api/v1/users -H "$ADMIN" -H "$J" -d "{\"username\":\"umlaut\",\"role\":\"viewer\",\"password\":\"$pw\"}")" '^201 '
check_match "... who signs in with it" \
	"$(lab_api POST /api/v1/auth/login -H "$J" -d "{\"username\":\"umlaut\",\"password\":\"$pw\"}")" '^200 .*"token"'
check_match "... and 257 of them: 400 (at most 256 characters)" \
	"$(lab_api POST /api/v1/users -H "$ADMIN" -H "$J" -d "{\"username\":\"umlaut2\",\"role\":\"viewer\",\"password\":\"${pw}ä\"}")" '^400 .*256 characters'
finish
