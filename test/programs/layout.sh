#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The shared library's layout for a small program's footprint (doc/design.md,
# "Fixed footprint"; configure's LAYOUT_LDFLAGS), read from the built
# $LIBALLOC with readelf and nm:
#   1. the hot text: a .text.alloc_hot section that starts within the first
#      page of the executable segment and ends within its first 64 KiB, and
#      holds the entry points and the start-up functions a program runs
#      (malloc, free, calloc, realloc, unless the build has a prefix
#      $ALLOC_PREFIX; tsd_boot, arena_boot, tcache_boot, malloc_init_hard)
#      and alloc_dt_fini;
#   2. DT_FINI is alloc_dt_fini (not the C runtime's _fini after the text);
#   3. .rodata follows .eh_frame and starts on a 64 KiB boundary;
#   4. src/hot_text.ld is not stale: at least 90 % of the functions it names
#      exist in the library (rerun scripts/hot-text after renaming them).
# Skips (77) when the library was linked without the layout (a toolchain
# that does not take it) or readelf/nm is missing.
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc 1
prog_need readelf nm
lib=$(readlink -f "$LIBALLOC")
fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

sections=$(readelf -SW "$lib")
hot=$(echo "$sections" | awk '$2 == ".text.alloc_hot" {print $4, $6}')
if [ -z "$hot" ]; then
	echo "SKIP: $lib has no .text.alloc_hot (linked without the layout)"
	exit 77
fi
read -r hot_addr hot_size <<<"$hot"
hot_start=$((16#$hot_addr))
hot_end=$((hot_start + 16#$hot_size))
# LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg(R E: two fields) Align
text_seg=$(readelf -lW "$lib" | awk '$1 == "LOAD" && $8 == "E" {print $3; exit}')
[ -n "$text_seg" ] || {
	echo "FAIL: no executable LOAD segment in $lib"
	exit 1
}
seg_start=$((text_seg))
echo "hot text: $((hot_end - hot_start)) bytes at +$((hot_start - seg_start)) in the text segment"
[ $((hot_start - seg_start)) -lt 4096 ] ||
	bad "the hot text starts $((hot_start - seg_start)) bytes into the text segment (PLT and .init only should come first)"
[ $((hot_end - seg_start)) -le 65536 ] ||
	bad "the hot text ends $((hot_end - seg_start)) bytes into the text segment: more than the first 64 KiB window"

# symbol ADDR of a function (local or global), empty when missing
symbols=$(nm "$lib")
sym_addr() { echo "$symbols" | awk -v n="$1" '$3 == n && ($2 == "t" || $2 == "T") {print $1; exit}'; }
# A --with-prefix build's entry points have other names than the script's
# (ALLOC_PREFIX, set by make check): only the start-up functions then.
checked="tsd_boot arena_boot tcache_boot malloc_init_hard alloc_dt_fini"
[ -n "${ALLOC_PREFIX:-}" ] || checked="malloc free calloc realloc $checked"
for f in $checked; do
	a=$(sym_addr "$f")
	if [ -z "$a" ]; then
		bad "$f: no such function in $lib"
		continue
	fi
	a=$((16#$a))
	if [ "$a" -lt "$hot_start" ] || [ "$a" -ge "$hot_end" ]; then
		bad "$f is not in the hot text"
	fi
done

fini=$(readelf -dW "$lib" | awk '$2 == "(FINI)" {print $3}')
dt=$(sym_addr alloc_dt_fini)
if [ -z "$fini" ] || [ -z "$dt" ] || [ $((fini)) -ne $((16#$dt)) ]; then
	bad "DT_FINI (${fini:-none}) is not alloc_dt_fini (${dt:-missing})"
fi

ro=$(echo "$sections" | awk '$2 == ".rodata" {print $4}')
eh=$(echo "$sections" | awk '$2 == ".eh_frame" {print $4}')
if [ -z "$ro" ] || [ -z "$eh" ]; then
	bad "no .rodata or .eh_frame section"
else
	[ $((16#$ro)) -gt $((16#$eh)) ] || bad ".rodata (0x$ro) comes before .eh_frame (0x$eh)"
	[ $((16#$ro % 65536)) -eq 0 ] || bad ".rodata (0x$ro) is not on a 64 KiB boundary"
fi

# The script's names against the library's functions (GCC's .part/.cold
# clones share their base name).
script=$src/src/hot_text.ld
if [ -f "$script" ]; then
	names=$(grep -o '\*(\.text\.[A-Za-z_0-9]*' "$script" | sed 's/^\*(\.text\.//' | sort -u)
	have=$(echo "$symbols" | awk '$2 == "t" || $2 == "T" {print $3}' |
		sed -E 's/\.(cold|part\.[0-9]+|constprop\.[0-9]+|isra\.[0-9]+)//g' | sort -u)
	total=$(echo "$names" | grep -c .)
	missing=$(comm -23 <(echo "$names") <(echo "$have"))
	nmissing=$(echo "$missing" | grep -c .)
	echo "src/hot_text.ld: $total functions, $nmissing not in the library"
	[ $((nmissing * 10)) -le "$total" ] ||
		bad "src/hot_text.ld is stale ($nmissing of $total functions are gone: $(echo "$missing" | tr '\n' ' ' | head -c 300)); rerun scripts/hot-text --write"
fi

[ $fail = 0 ] && echo "layout: OK"
exit $fail
