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

. "$(dirname "$0")/lib/compare.sh"
compare_setup sort sort awk
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
