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
printf 'name,type,host,port\nok-1,socks5,198.51.100.1,1080\nbad-port,socks5,198.51.100.2,70000\nbad-type,ftp,198.51.100.3,21\nok-1,http,198.51.100.4,3128\n' >"$LAB_DIR/bad.csv"
out=$(import text/csv "$LAB_DIR/bad.csv")
check_match "a file with bad lines: 400" "$out" '^400 '
check_eq "... each bad line named with its reason" \
	"$(body <<<"$out" | jq -c '[.error.lines[] | [.line, (.error | test("port|type|twice"))]]')" '[[3,true],[4,true],[5,true]]'
check_eq "... and nothing of it imported" "$(total)" "1003"
printf 'socks5://198.51.100.1:1080#good\n\n\nsocks5://198.51.100.1#no-port\nftp://x:1\nsocks5://u:p#w@198.51.100.1:1080\n' >"$LAB_DIR/bad.txt"
out=$(import text/plain "$LAB_DIR/bad.txt")
check_match "bad URIs (after two blank lines, and a '#' in a password): 400" "$out" '^400 '
check_eq "... with their own line numbers" "$(body <<<"$out" | jq -c '[.error.lines[].line]')" '[4,5,6]'
printf 'socks5://198.51.100.1:1080#caf\xe9\n' >"$LAB_DIR/latin1.txt"
check_match "a name that is not UTF-8: 400, said so" "$(import text/plain "$LAB_DIR/latin1.txt")" '^400 .*not UTF-8'
check_match "another content type: 415" "$(import application/json "$LAB_DIR/bad.txt")" '^415 '
check_eq "the audit has the imports" \
	"$(lab_api GET '/api/v1/audit?action=proxy.import' -H "$ADMIN" | body | jq '.items | length')" "6"
finish
