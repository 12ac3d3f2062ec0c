#!/usr/bin/env bash
# Scenario: a test that is interrupted (SIGTERM, SIGINT) or fails half-way still removes
# every namespace and process of its lab.
set -u
. "$(dirname "$0")/lib.sh"
set -m # background jobs keep SIGINT (non-interactive bash would ignore it in them)

child() { # what: ready file; then wait, or fail half-way
	cat <<CHILD
set -u
. "$ROOT/tests/lab.sh"
lab_up || exit 1
lab_start_peers || exit 1
echo "\$LAB_ID" > "$1.id"
awk '{print \$1}' "\$LAB_DIR/pids" > "$1.pids"
$2
CHILD
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for how in TERM INT fail; do
	if [ $how = fail ]; then
		child "$tmp/$how" 'false || { echo "a check failed"; exit 1; }' >"$tmp/$how.sh"
	else
		child "$tmp/$how" 'lab_wait_forever' >"$tmp/$how.sh"
	fi
	bash "$tmp/$how.sh" &
	pid=$!
	wait_for 20 bash -c "test -s $tmp/$how.pids || ! kill -0 $pid"
	id=$(cat "$tmp/$how.id" 2>/dev/null)
	check "[$how] the lab came up" test -n "$id"
	[ $how = fail ] || kill -$how $pid
	wait $pid
	rc=$?
	check "[$how] the test exited non-zero ($rc)" test $rc -ne 0
	check_eq "[$how] no namespace left" "$(ip netns list | grep -c "^pgwt-$id-")" "0"
	alive=0
	for p in $(cat "$tmp/$how.pids"); do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
	check_eq "[$how] no process left" "$alive" "0"
done
finish
