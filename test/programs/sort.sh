#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# GNU sort on liballoc. A 200,000-line file is generated from a seeded
# generator (awk), then sorted in several ways, including with a 1 MiB
# buffer (so sort spills to temporary files and merges) and with two sort
# threads. Each command runs on the system allocator and with
# LD_PRELOAD=$LIBALLOC; stdout, stderr and exit status must be identical.
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip without it or
# without sort/awk).
set -u

if [ -z "${LIBALLOC:-}" ]; then
	echo "SKIP: LIBALLOC is not set"
	exit 77
fi
if [ ! -f "$LIBALLOC" ]; then
	echo "FAIL: LIBALLOC=$LIBALLOC does not exist"
	exit 1
fi
for tool in sort awk; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP: $tool not found"
		exit 77
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/liballoc-sort.XXXXXX")
trap 'rm -rf "$work"' EXIT
lib_real=$(readlink -f "$LIBALLOC")

# Is liballoc really mapped into a preloaded process?
if ! LD_PRELOAD=$LIBALLOC cat /proc/self/maps | grep -qF "$lib_real"; then
	echo "FAIL: LD_PRELOAD=$LIBALLOC does not map $lib_real into the process"
	exit 1
fi

# run NAME CMD...: runs CMD plainly and preloaded, compares stdout, stderr and status.
status=0
run() {
	local name=$1
	shift
	local d
	for d in plain preload; do
		mkdir -p "$work/$d"
		local pre=
		[ "$d" = preload ] && pre=$LIBALLOC
		(cd "$work/$d" && env LD_PRELOAD="$pre" "$@" >"$name.out" 2>"$name.err"
			echo "exit $?" >"$name.status")
	done
	local f
	for f in out err status; do
		if ! cmp -s "$work/plain/$name.$f" "$work/preload/$name.$f"; then
			echo "FAIL: $name: $f differs between the system allocator and liballoc:"
			diff -u "$work/plain/$name.$f" "$work/preload/$name.$f" | head -40
			status=1
		fi
	done
	if [ "$(cat "$work/plain/$name.status")" != "exit 0" ]; then
		echo "FAIL: $name: $(cat "$work/plain/$name.status") even without liballoc"
		head -20 "$work/plain/$name.err"
		status=1
	fi
}
export LC_ALL=C
input=$work/input.txt
awk 'BEGIN {
	srand(42)
	for (i = 0; i < 200000; i++) {
		w = substr("abcdefghijklmnopqrstuvwxyz", int(rand() * 26) + 1, int(rand() * 12) + 1)
		printf "%08d %s %d %.3f\n", int(rand() * 100000000), w, i % 977, rand() * 1000
	}
}' >"$input"

run plain sort "$input"
run numeric sort -n -k3,3 -k1,1 "$input"
run keys sort -k2,2 -k4,4gr "$input"
run unique sort -u -k2,2 "$input"
run small-buffer sort -S 1M -T . "$input"
run parallel sort -S 1M --parallel=2 -T . -k2,2 -k1,1r "$input"
run parallel-big sort --parallel=2 -r "$input"
head -n 100000 "$input" | sort >"$work/half1.txt"
tail -n +100001 "$input" | sort >"$work/half2.txt"
run merge sort -m "$work/half1.txt" "$work/half2.txt"

[ $status -eq 0 ] && echo "PASS: sort gives identical output on liballoc"
exit $status
