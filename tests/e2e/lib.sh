#!/usr/bin/env bash
# tests/e2e/lib.sh - checks for the e2e scenarios. Each check prints "ok N - what" or
# "not ok N - what"; finish exits non-zero when any failed. A scenario is one file.
E2E_N=0
E2E_FAILED=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGW_BIN=${PGW_BIN:-$ROOT/build/bin}

_result() { # rc desc
	E2E_N=$((E2E_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $E2E_N - $2"
	else
		echo "not ok $E2E_N - $2"
		E2E_FAILED=$((E2E_FAILED + 1))
	fi
	return "$1" # a scenario may say more when a check failed: `check ... || echo "# why"`
}

# check DESC CMD...: passes when CMD exits 0 (its output goes to the log). Every check returns
# its result.
check() { local d=$1; shift; "$@" >/dev/null; _result $? "$d"; }
# check_fails DESC CMD...: passes when CMD exits non-zero.
check_fails() { local d=$1; shift; ! "$@" >/dev/null; _result $? "$d"; }
# check_eq DESC GOT WANT
check_eq() {
	[ "$2" == "$3" ]
	local rc=$?
	[ $rc -eq 0 ] || echo "# $1: got '$2', want '$3'"
	_result $rc "$1"
}
# check_match DESC TEXT REGEX
check_match() {
	[[ $2 =~ $3 ]]
	local rc=$?
	[ $rc -eq 0 ] || echo "# $1: '$2' does not match /$3/"
	_result $rc "$1"
}

# Wait up to SECONDS (of the clock, however long each try takes) for CMD to succeed; it is
# tried every 50 ms, and once more at the deadline.
wait_for() { # seconds cmd...
	local end=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	while :; do
		"$@" 2>/dev/null && return 0
		[ "${EPOCHREALTIME/./}" -lt "$end" ] || return 1
		sleep 0.05
	done
}

finish() {
	echo "1..$E2E_N"
	[ "$E2E_N" -gt 0 ] || { echo "# no checks ran"; exit 1; }
	[ "$E2E_FAILED" -eq 0 ] || { echo "# $E2E_FAILED of $E2E_N checks failed"; exit 1; }
	exit 0
}
