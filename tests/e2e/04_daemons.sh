#!/usr/bin/env bash
# Scenario: the four daemons run together on one DB inside a lab namespace: JSON logs, the
# event path (datagram) and the polling fallback (a commit nobody announced), clean SIGTERM,
# and configuration errors that name the variable.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
export PGW_DB=$LAB_DIR/pgw.db PGW_RUN_DIR=$LAB_DIR/run PGW_LOG_FORMAT=json PGW_LOG_LEVEL=debug
export PGW_JWT_SECRET=lab-secret-0123456789abcdef0123456789abcdef
ctl=$PGW_BIN/pgwctl
$ctl migrate >/dev/null

for d in api agent forwarder healthd; do
	lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"
	eval "pid_$d=$LAB_LAST_PID"
done
for d in api agent forwarder healthd; do
	check "pgw-$d starts" wait_for 5 grep -q '"msg":"started' "$LAB_DIR/pgw-$d.log"
done
check "every log line is JSON with ts, level and daemon" \
	bash -c "cat $LAB_DIR/pgw-*.log | jq -e -s 'all(.[]; has(\"ts\") and has(\"level\") and has(\"daemon\"))' >/dev/null"
check "the JWT secret is not in any log" bash -c "! grep -q lab-secret $LAB_DIR/pgw-*.log"
check "each daemon has its notify socket" test -S "$PGW_RUN_DIR/agent.sock" -a -S "$PGW_RUN_DIR/api.sock" \
	-a -S "$PGW_RUN_DIR/forwarder.sock" -a -S "$PGW_RUN_DIR/healthd.sock"

# keepalived's check script (pgwctl ha check) asks the forwarder "ping": its loops, not its counters
check "pgwctl ha check passes with the four daemons running" wait_for 5 "$ctl" ha check
check_eq "pgw-forwarder answers ping: its loops run" \
	"$(printf 'ping\n' | socat -t 2 - UNIX-CONNECT:"$PGW_RUN_DIR/forwarder.ctl")" '{"alive":true}'
kill -STOP "$pid_forwarder"
out=$("$ctl" ha check 2>&1)
rc=$?
kill -CONT "$pid_forwarder"
check "... fails while pgw-forwarder is stopped (SIGSTOP: nobody answers its control socket; exit $rc)" test $rc -ne 0
check_match "... saying so" "$out" "pgw-forwarder does not answer"
check "... passes again once it runs" wait_for 5 "$ctl" ha check
# the answers of a forwarder whose loop stopped, and of one from before "ping" (an upgrade
# installed, the forwarder not restarted yet): a stand-in on the control socket of another run
# directory that reaches the same agent
fake=$LAB_DIR/fake-run
mkdir -p "$fake"
ln -s "$PGW_RUN_DIR/agent.sock" "$fake/agent.sock"
fake_fwd() { # the one answer it gives each request
	lab_bg gw fake-forwarder python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen()
while True:
    c, _ = s.accept()
    c.recv(600)
    c.sendall(sys.argv[2].encode() + b"\n")
    c.close()' "$fake/forwarder.ctl" "$1"
	fake_pid=$LAB_LAST_PID
	wait_for 5 test -S "$fake/forwarder.ctl"
}
fake_end() { kill "$fake_pid"; wait "$fake_pid" 2>/dev/null; rm -f "$fake/forwarder.ctl"; }
fake_fwd '{"alive":false,"error":"a TCP worker'"'"'s loop has not run for over 10 s"}'
out=$(PGW_RUN_DIR=$fake "$ctl" ha check 2>&1)
rc=$?
fake_end
check "... fails when the forwarder answers that a loop has stopped (exit $rc)" test $rc -ne 0
check_match "... naming the loop" "$out" "pgw-forwarder answers, but a TCP worker's loop has not run for over 10 s"
fake_fwd '{"error":"unknown request '"'"'ping'"'"'"}'
check "... passes with a forwarder from before ping (it answers: alive as far as it can say)" env PGW_RUN_DIR="$fake" "$ctl" ha check
fake_end
fake_fwd '{"closed":0}'
out=$(PGW_RUN_DIR=$fake "$ctl" ha check 2>&1)
rc=$?
fake_end
check "... fails on an answer it does not understand (exit $rc)" test $rc -ne 0
check_match "... saying so" "$out" "answer to ping is not understood"

# Event path: pgwctl announces its change with a datagram.
$ctl settings set dns_mode local >/dev/null
for d in api agent forwarder healthd; do
	check "pgw-$d hears the change through the event path" \
		wait_for 2 grep -q '"msg":"notify: changed topics=0x8 ' "$LAB_DIR/pgw-$d.log"
done
# Polling fallback: a commit that nobody announces (a lost datagram) is still noticed.
# (counted from here: pgw-api logs the line for any other connection's commit, the agent's own too)
declare -A polled
for d in api agent forwarder healthd; do
	polled[$d]=$(grep -c '"msg":"db changed (polling fallback)' "$LAB_DIR/pgw-$d.log")
done
lab_db "UPDATE settings SET value = '9' WHERE key = 'health_timeout'"
for d in api agent forwarder healthd; do
	check "pgw-$d notices an unannounced commit through the polling fallback" \
		wait_for 5 bash -c "[ \$(grep -c '\"msg\":\"db changed (polling fallback)' $LAB_DIR/pgw-$d.log) -gt ${polled[$d]} ]"
done

for d in api agent forwarder healthd; do
	eval "pid=\$pid_$d"
	kill -TERM "$pid"
	wait "$pid"
	check_eq "pgw-$d stops on SIGTERM with exit 0" "$?" "0"
	check "pgw-$d removes its socket" test ! -e "$PGW_RUN_DIR/$d.sock"
done

out=$(PGW_FORWARDER_PORT=99999 $PGW_BIN/pgw-forwarder 2>&1)
check "bad configuration exits non-zero (exit $?)" test $? -ne 0
check_match "... naming the variable" "$out" "PGW_FORWARDER_PORT: '99999' is not a port"
out=$(PGW_JWT_SECRET=short $PGW_BIN/pgw-api 2>&1)
check_match "pgw-api refuses a short JWT secret" "$out" "PGW_JWT_SECRET: too short"
out=$($PGW_BIN/pgw-healthd --bogus 2>&1)
check "an unknown option exits non-zero (exit $?)" test $? -ne 0
finish
