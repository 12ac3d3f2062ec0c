#!/usr/bin/env bash
# The whole test run: unit tests (cmocka), the same unit tests under AddressSanitizer+UBSan,
# then the end-to-end scenarios in tests/e2e/ (one scenario per file, real namespaces and real
# peers). Ends with one line "N passed, N failed"; exits non-zero on any failure.
#   --unit-only   skip the ASan build and the e2e scenarios
#   E2E=pattern   run only the scenarios whose file name matches
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$ROOT/build/test-logs
mkdir -p "$LOGS"
pass=0 fail=0 failed=()
unit_only=0
[ "${1:-}" = --unit-only ] && unit_only=1

note() { printf '%s\n' "$*"; }
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); failed+=("$1"); note "FAIL: $1"; }

# Run every cmocka binary in dir; each test case counts once. A binary that dies without
# reporting (a sanitizer abort) counts as one failure.
run_unit() { # label build-dir
	local label=$1 dir=$2 t out rc n_ok n_bad
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		out=$LOGS/$label-$(basename "$t").log
		(cd "$ROOT" && CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t") >"$out" 2>&1
		rc=$?
		n_ok=$(grep -c '^ok ' "$out")
		n_bad=$(grep -c '^not ok ' "$out")
		pass=$((pass + n_ok))
		while read -r line; do bad "$label/$(basename "$t"): ${line#not ok }"; done < <(grep '^not ok ' "$out")
		if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then
			bad "$label/$(basename "$t"): exited $rc without a result (see $out)"
			tail -n 20 "$out"
		elif [ "$n_ok" -eq 0 ] && [ "$n_bad" -eq 0 ]; then
			bad "$label/$(basename "$t"): printed no result (see $out)"
		fi
		[ "$n_bad" -gt 0 ] && grep -B2 -A8 '^not ok\|# ' "$out" | head -n 40
		note "$label $(basename "$t"): $n_ok passed, $n_bad failed"
	done
}

# Every C file formatted as .clang-format says (make fmt rewrites them).
if make -s fmt-check >"$LOGS/format.log" 2>&1; then
	ok
	note "$(tail -n 1 "$LOGS/format.log")"
else
	bad "format (make fmt; see $LOGS/format.log)"
	grep -m 10 'warning:' "$LOGS/format.log"
fi

if ! make -s -j2 all unit-bins >"$LOGS/build.log" 2>&1; then
	cat "$LOGS/build.log"
	bad "build"
else
	run_unit unit build
fi

if [ "$unit_only" = 0 ]; then
	if ! make -s -j2 BUILD=build/asan SAN=1 all unit-bins >"$LOGS/build-asan.log" 2>&1; then
		cat "$LOGS/build-asan.log"
		bad "build (asan)"
	else
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			run_unit asan build/asan
	fi

	# Fuzzers: a bounded run of each harness from its seed corpus (copied: libFuzzer adds to it).
	if ! make -s fuzz-bins >"$LOGS/build-fuzz.log" 2>&1; then
		cat "$LOGS/build-fuzz.log"
		bad "build (fuzz)"
	else
		for f in build/fuzz/fuzz_*; do
			name=$(basename "$f")
			corpus=$(mktemp -d)
			cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null
			if "$f" -runs="${FUZZ_RUNS:-200000}" -max_total_time=20 "$corpus" >"$LOGS/$name.log" 2>&1; then
				ok
				note "fuzz $name: $(grep -o 'Done [0-9]* runs' "$LOGS/$name.log")"
			else
				bad "fuzz/$name (log $LOGS/$name.log)"
				grep -A20 'ERROR\|Assertion' "$LOGS/$name.log" | head -n 30
			fi
			rm -rf "$corpus"
		done
	fi

	# The kill-switch, healthd, API, fault-matrix, cut-on-block and UDP relay scenarios run the
	# daemons built with AddressSanitizer + UBSan (the forwarder relays and cuts under it in 06,
	# 20 and 21, and relays UDP, bad datagrams included, in 24); a sanitizer report from any process fails the scenario. 08_forwarder's 10,000-
	# connection soak runs the plain build: under ASan about 32 of 10,000 SYNs went unanswered
	# for 20 s, before the forwarder saw them (open finding, see the issue note).
	SAN_E2E="06_no_leak 09_healthd 12_api 20_fail_closed 21_cut_on_block 24_udp_relay 30_failover 31_destination_failures 32_clients 33_mac_binding 34_rate_limits 35_quotas 36_connections 37_webhooks 39_ha 40_oidc"
	for s in tests/e2e/[0-9]*.sh; do
		[ -f "$s" ] || continue
		case "$(basename "$s")" in *${E2E:-}*) ;; *) continue ;; esac
		name=$(basename "$s" .sh)
		log=$LOGS/e2e-$name.log
		bin=$ROOT/build/bin san=""
		case " $SAN_E2E " in *" $name "*)
			bin=$ROOT/build/asan/bin san=$LOGS/sanitizer-$name
			rm -f "$san".* ;;
		esac
		keep=$LOGS/lab-$name # the daemons' logs, kept when the scenario fails
		rm -rf "$keep"
		export LAB_KEEP_LOGS=$keep
		start=$(date +%s)
		if [ -n "$san" ]; then
			PGW_BIN=$bin ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16:log_path=$san UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san \
				timeout --kill-after=10 900 bash "$s" >"$log" 2>&1
		else
			PGW_BIN=$bin timeout --kill-after=10 600 bash "$s" >"$log" 2>&1
		fi
		rc=$?
		secs=$(( $(date +%s) - start ))
		reports=$( [ -n "$san" ] && ls "$san".* 2>/dev/null)
		if [ "$rc" -eq 0 ] && [ -z "$reports" ]; then
			rm -rf "$keep"
			ok
			note "e2e $name: passed ($(grep -c '^ok ' "$log") checks, ${secs}s${san:+, sanitized daemons})"
		elif [ "$rc" -eq 0 ]; then
			bad "e2e/$name (sanitizer reports: $reports)"
			head -n 40 $reports
		else
			bad "e2e/$name (exit $rc, ${secs}s, log $log)"
			grep -E '^(not ok|#)' "$log" | head -n 30
			tail -n 15 "$log"
			for f in "$keep"/pgw-*.log; do
				[ -f "$f" ] && { echo "--- $f (last 8 lines)"; tail -n 8 "$f"; }
			done
			[ -n "$reports" ] && head -n 40 $reports
		fi
	done
fi

if [ -n "${E2E:-}" ]; then # a leftover E2E must not pass for a whole run
	note ""
	note "NOTE: E2E='$E2E' ran only the scenarios matching it: this is not a whole run"
	[ -n "${CI:-}" ] && bad "E2E is set under CI"
fi
if [ "$fail" -gt 0 ]; then
	note ""
	note "Failed:"
	for f in "${failed[@]}"; do note "  $f"; done
fi
note "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
