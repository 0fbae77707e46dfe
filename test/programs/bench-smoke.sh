#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# bench-smoke: every benchmark workload runs once under liballoc, in tiny
# mode, through the real runner (scripts/bench), so that neither the
# workloads, their self-checks nor the report generation can rot; and so
# does the RSS-over-time measurement (scripts/bench --decay, 2 s).
# The workloads are built into a temporary directory (BENCH_BIN), not into
# the source tree. glibc runs too, so the report has a baseline to divide by.
#
# Environment: LIBALLOC (path of liballoc.so; set by make check),
# ALLOC_SRCDIR (source tree; default: two levels up from this script).
# Exit: 0 all passed, 1 a workload failed or the report is broken,
# 77 skipped (LIBALLOC unset or missing).
set -u
src=${ALLOC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

if [ -z "${LIBALLOC:-}" ] || [ ! -f "$LIBALLOC" ]; then
	echo "bench-smoke: LIBALLOC unset or missing (${LIBALLOC:-unset}); skipped"
	exit 77
fi
LIBALLOC=$(readlink -f "$LIBALLOC")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# python and sqlite run only when their programs are there (scripts/check installs them)
only=(pair linked mixed larson prodcons realloc large reuse frag threads xfree xmalloc gcchurn mstress tiny)
if [ -x "${BENCH_PYTHON:-/usr/bin/python3}" ]; then
	only+=(python)
else
	echo "bench-smoke: no ${BENCH_PYTHON:-/usr/bin/python3}: python workload not run"
fi
if command -v sqlite3 >/dev/null 2>&1; then
	only+=(sqlite)
else
	echo "bench-smoke: no sqlite3: sqlite workload not run"
fi

export LIBALLOC BENCH_BIN=$tmp/bin
bash "$src/scripts/bench" --tiny --rounds 1 --libs glibc,liballoc --no-install --no-build \
	--timeout 120 --out "$tmp/results" --only "${only[@]}" >"$tmp/out.log" 2>&1
rc=$?
cat "$tmp/out.log"
fail=0
if [ $rc != 0 ]; then
	echo "bench-smoke: scripts/bench exited with $rc"
	fail=1
fi

# every workload must have passed under liballoc (the runner skips, with a
# warning only, an allocator that does not load; here that is a failure)
raw=$tmp/results/latest-raw.csv
for w in "${only[@]}"; do
	st=$(awk -F, -v w="$w" '$2 == w && $3 == "liballoc" {print $4}' "$raw" 2>/dev/null)
	if [ "$st" != 0 ]; then
		echo "bench-smoke: $w under liballoc: ${st:+status $st}${st:-did not run}"
		[ -f "$tmp/results/logs/$w.liballoc.1.log" ] && tail -n 20 "$tmp/results/logs/$w.liballoc.1.log"
		fail=1
	else
		echo "bench-smoke: $w under liballoc: ok"
	fi
done

# the report files must be complete
for f in latest.md latest.csv latest.svg; do
	if [ ! -s "$tmp/results/$f" ]; then
		echo "bench-smoke: $f missing or empty"
		fail=1
	fi
done
grep -q '</svg>' "$tmp/results/latest.svg" 2>/dev/null || {
	echo "bench-smoke: latest.svg is not a complete SVG"
	fail=1
}
grep -q '^geomean,liballoc,' "$tmp/results/latest.csv" 2>/dev/null || {
	echo "bench-smoke: latest.csv has no geomean for liballoc"
	fail=1
}
grep -q 'liballoc  vs glibc' "$tmp/out.log" || {
	echo "bench-smoke: the closing note (liballoc vs glibc) is missing"
	fail=1
}

# the RSS-over-time measurement (scripts/bench --decay), liballoc only, tiny
bash "$src/scripts/bench" --decay --tiny --seconds 2 --libs liballoc --no-install --no-build \
	--timeout 60 --out "$tmp/decay" >"$tmp/decay.log" 2>&1
rc=$?
cat "$tmp/decay.log"
if [ $rc != 0 ]; then
	echo "bench-smoke: scripts/bench --decay exited with $rc"
	fail=1
elif [ "$(grep -c '^| liballoc .* | [0-9.]* | [0-9.]* |' "$tmp/decay/decay.md")" != 3 ]; then
	echo "bench-smoke: decay.md lacks the three liballoc scenarios"
	fail=1
fi

if [ $fail = 0 ]; then
	echo "bench-smoke: all ${#only[@]} workloads and the decay measurement passed under liballoc"
fi
exit $fail
