#!/usr/bin/env bash
# Scenario: the admin CLI on a real DB file: migrate (twice), users, settings, backup and
# restore, and the refusals (newer schema, corrupt file, bad input) that change nothing.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PGW_DB=$tmp/var/pgw.db PGW_RUN_DIR=$tmp/run
ctl=$PGW_BIN/pgwctl
schema() { sqlite3 "$1" .schema; }

for b in pgw-api pgw-agent pgw-forwarder pgw-healthd pgwctl; do
	out=$("$PGW_BIN/$b" --help 2>&1)
	check "$b --help exits 0 and shows usage" test $? -eq 0 -a -n "$(echo "$out" | grep -i usage)"
done

out=$($ctl migrate 2>&1)
check_match "migrate creates the DB (and its directory)" "$out" "migrated from schema version 0 to [0-9]+"
s1=$(schema "$PGW_DB")
out=$($ctl migrate 2>&1)
check_match "migrate again is a no-op" "$out" "nothing to do"
check_eq "schema unchanged by the second migrate" "$(schema "$PGW_DB")" "$s1"

out=$(echo 'correct horse battery' | $ctl user add alice --role admin --password-stdin 2>&1)
check_match "user add admin" "$out" "added with role admin"
out=$(echo 'correct horse battery' | $ctl user add alice --role viewer --password-stdin 2>&1)
check_match "a duplicate user is refused" "$out" "already exists"
out=$(echo 'short' | $ctl user add bob --role viewer --password-stdin 2>&1)
check_match "a short password is refused" "$out" "too short"
out=$(echo 'correct horse battery' | $ctl user add bob --role root --password-stdin 2>&1)
check_match "an unknown role is refused" "$out" "admin or viewer"
check_eq "only alice exists" "$(sqlite3 "$PGW_DB" 'select group_concat(username) from users')" "alice"
hash=$(sqlite3 "$PGW_DB" "select password_hash from users where username='alice'")
check_match "passwords are stored as Argon2id" "$hash" '^\$argon2id\$v=19\$m=65536,t=3,p=1\$'
echo 'another good password' | $ctl user passwd alice --password-stdin >/dev/null
check "user passwd changes the hash" test "$hash" != "$(sqlite3 "$PGW_DB" "select password_hash from users where username='alice'")"
out=$(echo 'another good password' | $ctl user passwd nobody --password-stdin 2>&1)
check_match "passwd of an unknown user says so" "$out" "no user 'nobody'"
check_match "user list shows alice" "$($ctl user list)" "alice +admin"
check "no password reaches the audit log" test -z "$(sqlite3 "$PGW_DB" "select 1 from audit where after_json like '%horse%'")"

check_eq "settings get" "$($ctl settings get health_interval)" "30"
$ctl settings set health_interval 10 >/dev/null
check_eq "settings set" "$($ctl settings get health_interval)" "10"
out=$($ctl settings set health_interval 0 2>&1)
check_match "an invalid setting is refused with the reason" "$out" "health_interval: '0' is not a whole number"
check_eq "... and changes nothing" "$($ctl settings get health_interval)" "10"
out=$($ctl settings set bogus 1 2>&1)
check_match "an unknown setting is refused" "$out" "unknown setting"
check_eq "settings changes are audited" "$(sqlite3 "$PGW_DB" "select count(*) from audit where action='settings.update'")" "1"

check "backup writes a file" $ctl backup "$tmp/b1.db"
check_fails "backup refuses to overwrite" $ctl backup "$tmp/b1.db"
$ctl settings set health_interval 20 >/dev/null
check "restore succeeds" $ctl restore "$tmp/b1.db"
check_eq "restore brings back the backed-up value" "$($ctl settings get health_interval)" "10"
echo "garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage" >"$tmp/bad.db"
out=$($ctl restore "$tmp/bad.db" 2>&1)
check_match "restore refuses a non-backup" "$out" "not a pgw backup"
check_eq "... and changes nothing" "$($ctl settings get health_interval)" "10"
# a backup damaged inside (its header whole: it opens and says its version) is refused too
sqlite3 "$PGW_DB" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
	INSERT INTO audit (username, action, object_id) SELECT 't', 'test.fill', printf('%0500d', i) FROM n"
$ctl backup "$tmp/b2.db" >/dev/null
dd if=/dev/urandom of="$tmp/b2.db" bs=4096 seek=3 count=4 conv=notrunc 2>/dev/null
$ctl settings set health_interval 30 >/dev/null
out=$($ctl restore "$tmp/b2.db" 2>&1)
check_match "restore refuses a damaged backup, saying so" "$out" "is damaged .*nothing was restored"
check_eq "... and changes nothing" "$($ctl settings get health_interval)" "30"
check_eq "... the database is whole" "$(sqlite3 "$PGW_DB" 'PRAGMA integrity_check')" "ok"

# A DB from a newer pgw: every program refuses it and says why.
cp "$PGW_DB" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "PRAGMA user_version = 999"
out=$(PGW_DB=$tmp/newer.db $ctl migrate 2>&1)
check_match "migrate refuses a newer DB" "$out" "schema version 999 is newer than this pgw knows"
check_eq "... and leaves its version alone" "$(sqlite3 "$tmp/newer.db" 'PRAGMA user_version')" "999"
out=$(PGW_DB=$tmp/newer.db $PGW_BIN/pgw-healthd --check-config 2>&1)
check "a daemon refuses a newer DB (exit $?)" test $? -ne 0
check_match "... naming PGW_DB and the versions" "$out" "PGW_DB: database schema version 999 is newer"

# A corrupt DB file.
head -c 8192 /dev/urandom >"$tmp/corrupt.db"
out=$(PGW_DB=$tmp/corrupt.db $ctl migrate 2>&1)
check_match "migrate refuses a corrupt file" "$out" "not a pgw database or is corrupt"
out=$(PGW_DB=$tmp/corrupt.db $PGW_BIN/pgw-forwarder --check-config 2>&1)
check_match "a daemon refuses a corrupt file" "$out" "not a pgw database or is corrupt"
out=$(PGW_DB=$tmp/none.db $PGW_BIN/pgw-agent --check-config 2>&1)
check_match "a daemon on a missing DB says to run migrate" "$out" "pgwctl migrate"
finish
