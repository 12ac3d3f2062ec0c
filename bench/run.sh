#!/usr/bin/env bash
# make bench: every benchmark in bench/*.sh, each printing its own table. Not part of make test:
# these machines are shared and noisy, so figures are read, compared in the same run, and
# recorded in docs/PERFORMANCE.md, never asserted in tests.
set -u
cd "$(dirname "$0")/.."
rc=0
for b in bench/bench_*.sh; do
	echo "== $(basename "$b" .sh)"
	bash "$b" || rc=1
	echo
done
exit $rc
