#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The shared library's layout for a small program's footprint (doc/design.md,
# "Fixed footprint"; configure's LAYOUT_*), read from the built $LIBALLOC
# with readelf and nm:
#   1. DT_FINI is alloc_dt_fini (not the C runtime's _fini after the text);
#   2. the hot text: every function src/hot_text.list names (and GCC's
#      clones of them) lies in the first 64 KiB of the executable segment,
#      among them malloc, free, calloc, realloc (unless the build has a
#      prefix, $ALLOC_PREFIX), tsd_boot, arena_boot, tcache_boot,
#      malloc_init_hard and alloc_dt_fini, and so does pthread_atfork when
#      it is linked in (glibc's libc_nonshared.a); all in .text, the one
#      section tools such as valgrind read symbols from;
#   3. .rodata follows .eh_frame and starts on a 64 KiB boundary;
#   4. src/hot_text.list is not stale: at least 90 % of its functions exist
#      in the library (rerun scripts/hot-text --write after renaming them).
# Skips (77) when the library was linked without the layout (DT_FINI is not
# alloc_dt_fini: a toolchain that does not take it) or readelf/nm is
# missing.
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
symbols=$(nm -S "$lib")
# sym_addr NAME: the address of function NAME (local or global), or nothing
sym_addr() { echo "$symbols" | awk -v n="$1" '$4 == n && ($3 == "t" || $3 == "T") {print $1; exit}'; }

fini=$(readelf -dW "$lib" | awk '$2 == "(FINI)" {print $3}')
dt=$(sym_addr alloc_dt_fini)
if [ -z "$fini" ] || [ -z "$dt" ] || [ $((fini)) -ne $((16#$dt)) ]; then
	echo "SKIP: $lib was linked without the layout (DT_FINI ${fini:-none} is not alloc_dt_fini)"
	exit 77
fi

# LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg(R E: two fields) Align
text_seg=$(readelf -lW "$lib" | awk '$1 == "LOAD" && $8 == "E" {print $3; exit}')
[ -n "$text_seg" ] || {
	echo "FAIL: no executable LOAD segment in $lib"
	exit 1
}
seg_start=$((text_seg))
text=$(echo "$sections" | awk '$2 == ".text" {print $4, $6}')
read -r text_addr text_size <<<"$text"
text_start=$((16#$text_addr))
text_end=$((text_start + 16#$text_size))

# Every function of the list (base names: GCC's .part/.constprop/.isra
# clones share them; cold parts stay with the cold code), and the ones
# every program runs, by name.
list=$src/src/hot_text.list
names=$(sed -n '/^[A-Za-z_]/p' "$list")
hot=$(echo "$symbols" | awk '$3 == "t" || $3 == "T" {print $1, $2, $4}' |
	awk -v names="$names" 'BEGIN {n = split(names, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1}
		{b = $3; gsub(/\.(part|constprop|isra)\.[0-9]+/, "", b); if (b in want && $3 !~ /\.cold$/) print $1, $2, $3}')
max_end=0 worst=
while read -r a sz name; do
	e=$((16#$a + 16#$sz))
	if [ "$e" -gt "$max_end" ]; then max_end=$e worst=$name; fi
	if [ $((16#$a)) -lt "$text_start" ] || [ "$e" -gt "$text_end" ]; then
		bad "$name is outside .text"
	fi
done <<<"$hot"
atfork=$(sym_addr pthread_atfork)
if [ -n "$atfork" ] && [ $((16#$atfork + 16)) -gt "$max_end" ]; then
	max_end=$((16#$atfork + 16)) worst=pthread_atfork
fi
echo "hot text: $(echo "$hot" | grep -c .) functions, ending $((max_end - seg_start)) bytes into the text segment ($worst)"
[ $((max_end - seg_start)) -le 65536 ] ||
	bad "the hot text ends $((max_end - seg_start)) bytes into the text segment ($worst): past its first 64 KiB"

# A --with-prefix build's entry points have other names than the list's
# (ALLOC_PREFIX, set by make check): only the start-up functions then.
checked="tsd_boot arena_boot tcache_boot malloc_init_hard alloc_dt_fini"
[ -n "${ALLOC_PREFIX:-}" ] || checked="malloc free calloc realloc $checked"
for f in $checked; do
	if ! echo "$hot" | awk -v n="$f" '$3 == n {found = 1} END {exit !found}'; then
		bad "$f is not among the hot functions of $lib"
	fi
done

ro=$(echo "$sections" | awk '$2 == ".rodata" {print $4}')
eh=$(echo "$sections" | awk '$2 == ".eh_frame" {print $4}')
if [ -z "$ro" ] || [ -z "$eh" ]; then
	bad "no .rodata or .eh_frame section"
else
	[ $((16#$ro)) -gt $((16#$eh)) ] || bad ".rodata (0x$ro) comes before .eh_frame (0x$eh)"
	[ $((16#$ro % 65536)) -eq 0 ] || bad ".rodata (0x$ro) is not on a 64 KiB boundary"
fi

# The list's names against the library's functions.
have=$(echo "$symbols" | awk '$3 == "t" || $3 == "T" {print $4}' |
	sed -E 's/\.(cold|part\.[0-9]+|constprop\.[0-9]+|isra\.[0-9]+)//g' | sort -u)
total=$(echo "$names" | grep -c .)
missing=$(comm -23 <(echo "$names" | sort -u) <(echo "$have"))
nmissing=$(echo "$missing" | grep -c .)
echo "src/hot_text.list: $total functions, $nmissing not in the library"
[ $((nmissing * 10)) -le "$total" ] ||
	bad "src/hot_text.list is stale ($nmissing of $total functions are gone: $(echo "$missing" | tr '\n' ' ' | head -c 300)); rerun scripts/hot-text --write"

[ $fail = 0 ] && echo "layout: OK"
exit $fail
