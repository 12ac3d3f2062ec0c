#!/usr/bin/env bash
# Scenario: the daemons as Docker Compose runs them. Docker gives capabilities only to root, and
# the image's volumes belong to the service user (0750), so a daemon that needs CAP_NET_ADMIN
# starts as root with every other capability dropped (cap_drop: ALL) and no new privileges, and
# PGW_DROP_ROOT=true makes it the service user at once, keeping CAP_NET_ADMIN alone where it
# needs it. Without it such a root cannot even open the DB. setpriv plays Docker here; the
# service user is nobody.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }

# the volumes, as the image makes them: the service user's, 0750
vol=$LAB_DIR/vol
mkdir -p "$vol/data" "$vol/run"
chown nobody:nogroup "$vol/data" "$vol/run"
chmod 0750 "$vol/data" "$vol/run"
export PGW_DB=$vol/data/pgw.db PGW_RUN_DIR=$vol/run PGW_LOG_FORMAT=json PGW_SERVICE_USER=nobody
setpriv --reuid=nobody --regid=nogroup --clear-groups "$PGW_BIN/pgwctl" migrate >/dev/null
check "the DB is the service user's (pgwctl migrate as that user, as the compose file's migrate service)" \
	test "$(stat -c %U "$PGW_DB")" = nobody

# as root with only these capabilities in its bounding set, no new privileges: Docker's
# cap_drop: [ALL] with cap_add
docker_root() { # caps: the command's prefix
	echo "setpriv --bounding-set=-all,$1 --inh-caps=-all --no-new-privs"
}
status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

out=$(lab_exec gw env PGW_DROP_ROOT=false \
	$(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-agent" --check-config 2>&1)
check "such a root cannot open the service user's DB without PGW_DROP_ROOT (exit non-zero)" test $? -ne 0
check_match "... unable to open it" "$out" "unable to open database file"
out=$(lab_exec gw env PGW_DROP_ROOT=true $(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-agent" \
	--check-config 2>&1)
check_match "with PGW_DROP_ROOT=true it becomes the service user and opens it" "$out" \
	"configuration and database OK"

# (here without no-new-privileges, which the agent must set on itself)
lab_bg gw pgw-agent env PGW_DROP_ROOT=true $(docker_root +net_admin,+setuid,+setgid | sed 's/ --no-new-privs//') \
	"$PGW_BIN/pgw-agent"
apid=$LAB_LAST_PID # (ip netns exec, env and setpriv each exec the next)
check "pgw-agent starts" wait_for 5 grep -q '"msg":"started' "$LAB_DIR/pgw-agent.log"
check_match "... and says it runs as the service user with CAP_NET_ADMIN alone" \
	"$(cat "$LAB_DIR/pgw-agent.log")" "running as nobody \\(uid 65534\\), keeping CAP_NET_ADMIN alone"
check_eq "... its user ids are all the service user's (real, effective, saved, fs)" \
	"$(grep '^Uid:' "/proc/$apid/status" | awk '{print $2,$3,$4,$5}')" "65534 65534 65534 65534"
check_eq "... its group ids too, and no supplementary groups" \
	"$(grep '^Gid:' "/proc/$apid/status" | awk '{print $2,$3,$4,$5}')/$(grep '^Groups:' "/proc/$apid/status" | awk '{print $2}')" \
	"65534 65534 65534 65534/"
check_eq "... its effective and permitted capabilities are CAP_NET_ADMIN alone" \
	"$(status_field "$apid" CapEff) $(status_field "$apid" CapPrm) $(status_field "$apid" CapAmb)" \
	"0000000000001000 0000000000001000 0000000000000000"
check "... and it builds table inet pgw (netlink with that capability)" \
	wait_for 5 lab_exec gw nft list table inet pgw
check_eq "... and no new privileges for it, though it was started without" "$(status_field "$apid" NoNewPrivs)" 1
check_eq "... its notify socket belongs to the service user" "$(stat -c %U "$PGW_RUN_DIR/agent.sock")" nobody
check "... it writes the DB (the applied state: a generation, no error)" wait_for 5 bash -c \
	"sqlite3 '$PGW_DB' \"SELECT generation > 0 AND applied_at > 0 AND last_error = '' FROM agent_state\" | grep -qx 1"

# a daemon that needs no capability drops every one, even one it was given
lab_bg gw pgw-healthd env PGW_DROP_ROOT=true $(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-healthd"
hpid=$LAB_LAST_PID
check "pgw-healthd starts the same way" wait_for 5 grep -q '"msg":"started' "$LAB_DIR/pgw-healthd.log"
check_eq "... as the service user without any capability (CAP_NET_ADMIN given, not kept)" \
	"$(status_field "$hpid" Uid)/$(status_field "$hpid" CapEff)/$(status_field "$hpid" CapPrm)" \
	"65534/0000000000000000/0000000000000000"

# the forwarder keeps CAP_NET_ADMIN when it was given it (TPROXY, the UDP relay), else none
lab_bg gw pgw-forwarder env PGW_DROP_ROOT=true $(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-forwarder"
fpid=$LAB_LAST_PID
check "pgw-forwarder starts with CAP_NET_ADMIN given" wait_for 5 grep -q '"msg":"started' "$LAB_DIR/pgw-forwarder.log"
check_eq "... keeps it alone, as the service user" \
	"$(status_field "$fpid" Uid)/$(status_field "$fpid" CapEff)" "65534/0000000000001000"
check "... and uses it: its UDP relay and TPROXY listener are up (transparent sockets need it)" \
	bash -c "grep -q 'udp: relay listening' '$LAB_DIR/pgw-forwarder.log' && ! grep -q 'TPROXY listener.*unavailable' '$LAB_DIR/pgw-forwarder.log'"
kill -TERM "$fpid"
check "... and stops on SIGTERM" wait_for 5 bash -c "! kill -0 $fpid 2>/dev/null"
lab_bg gw pgw-forwarder2 env PGW_DROP_ROOT=true $(docker_root +setuid,+setgid) "$PGW_BIN/pgw-forwarder"
fpid=$LAB_LAST_PID
check "pgw-forwarder starts without it (REDIRECT needs none)" \
	wait_for 5 grep -q '"msg":"started' "$LAB_DIR/pgw-forwarder2.log"
check_eq "... as the service user without any capability" \
	"$(status_field "$fpid" Uid)/$(status_field "$fpid" CapEff)" "65534/0000000000000000"
check "... its UDP relay and TPROXY listener off, saying so (the check above can fail)" \
	bash -c "grep -q 'udp: relay off' '$LAB_DIR/pgw-forwarder2.log' && grep -q 'TPROXY listener.*unavailable' '$LAB_DIR/pgw-forwarder2.log'"

# one pgw.env for all (Compose): a JWT secret file only the service user may read; the agent,
# root without DAC_READ_SEARCH until it drops, cannot read it and needs it not: it starts
printf 'jwt-secret-0123456789abcdef0123456789abcdef\n' >"$vol/jwt.secret"
chown nobody:nogroup "$vol/jwt.secret"
chmod 0400 "$vol/jwt.secret"
out=$(lab_exec gw env PGW_DROP_ROOT=true PGW_JWT_SECRET_FILE="$vol/jwt.secret" \
	$(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-agent" --check-config 2>&1)
check_match "a JWT secret file only pgw reads: the agent (which drops it) starts all the same" "$out" \
	"configuration and database OK"
out=$(PGW_JWT_SECRET_FILE=$vol/jwt.secret setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$PGW_BIN/pgw-api" --check-config 2>&1)
check_match "... and pgw-api, as that user, reads it" "$out" "configuration and database OK"
out=$(PGW_JWT_SECRET_FILE=/nonexistent/jwt.secret "$PGW_BIN/pgw-api" --check-config 2>&1)
check_match "... while pgw-api refuses a file it cannot read, naming it" "$out" "PGW_JWT_SECRET_FILE: cannot read"

# mistakes say what is wrong and start nothing
out=$(lab_exec gw env PGW_DROP_ROOT=true $(docker_root +net_admin) "$PGW_BIN/pgw-agent" --check-config 2>&1)
check "without CAP_SETUID and CAP_SETGID: exit non-zero ($?)" test $? -ne 0
check_match "... saying which capabilities it needs" "$out" "could not become 'nobody'.*CAP_SETUID and CAP_SETGID"
out=$(lab_exec gw env PGW_DROP_ROOT=true PGW_SERVICE_USER=no-such-user \
	$(docker_root +net_admin,+setuid,+setgid) "$PGW_BIN/pgw-agent" --check-config 2>&1)
check "a service user that does not exist: exit non-zero ($?)" test $? -ne 0
check_match "... naming it" "$out" "no user 'no-such-user'"
out=$(PGW_DROP_ROOT=maybe "$PGW_BIN/pgw-healthd" --check-config 2>&1)
check_match "a value that is no boolean names the variable" "$out" "PGW_DROP_ROOT: 'maybe' is not a boolean"
out=$(PGW_DROP_ROOT=true setpriv --reuid=nobody --regid=nogroup --clear-groups "$PGW_BIN/pgw-healthd" \
	--check-config 2>&1)
check_match "not root (systemd starts it as the service user): nothing to drop, it runs" "$out" \
	"configuration and database OK"

finish
