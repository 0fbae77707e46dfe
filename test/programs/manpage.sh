#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The manual page doc/alloc.3:
#   1. renders with groff (-man, all warnings enabled) without a single
#      warning, and passes `mandoc -Tlint` at warning level when mandoc is
#      installed;
#   2. documents every function the library exports: each name that
#      `nm -D --defined-only $LIBALLOC` lists (glibc's __libc_* and
#      __posix_memalign aliases aside, and with the configured prefix
#      $ALLOC_PREFIX taken off) must appear in the SYNOPSIS and again
#      further down the page.
#
# Needs LIBALLOC=/abs/path/liballoc.so; ALLOC_SRCDIR locates the page (the
# source tree this script lives in, by default). Exit 77 = skip when groff
# or nm is missing.
set -u

. "$(dirname "$0")/lib/preamble.sh"
srcdir=$src
page=$srcdir/doc/alloc.3
prefix=${ALLOC_PREFIX:-}
nm=${NM:-nm}

prog_need_liballoc 1
if ! command -v groff >/dev/null 2>&1; then
	echo "SKIP: groff not found (install groff-base)"
	exit 77
fi
prog_need "$nm"
if [ ! -f "$page" ]; then
	echo "FAIL: $page does not exist"
	exit 1
fi

prog_workdir manpage
status=0

# 1. Rendering. -ww enables every warning; -P-cbou makes grotty write plain
# text (no escape sequences, no overstriking) for the checks below. A wide
# line keeps every prototype on one line.
if ! groff -man -Tutf8 -ww -rLL=200n -P-cbou "$page" >"$work/page.txt" 2>"$work/groff.err"; then
	echo "FAIL: groff exited with status $? on $page"
	status=1
fi
if [ -s "$work/groff.err" ]; then
	echo "FAIL: groff warns about $page:"
	head -40 "$work/groff.err"
	status=1
fi
if command -v mandoc >/dev/null 2>&1; then
	if ! mandoc -Tlint -W warning "$page" >"$work/mandoc.out" 2>&1; then
		echo "FAIL: mandoc -Tlint -W warning reports problems in $page:"
		head -40 "$work/mandoc.out"
		status=1
	fi
else
	echo "note: mandoc not found, lint step skipped"
fi

# 2. Every exported function and variable is documented. The SYNOPSIS is
# the text between the "SYNOPSIS" heading and the next heading (lines that
# start with a capital letter at column 0).
# Words hyphenated at a line end (U+2010 with -Tutf8) are joined first.
LC_ALL=C sed -e ':a' -e '/\xe2\x80\x90$/{N;s/\xe2\x80\x90\n *//;ba' -e '}' \
	"$work/page.txt" >"$work/joined.txt"
awk '/^SYNOPSIS$/ { on = 1; next } /^[A-Z]/ { on = 0 } on' "$work/joined.txt" >"$work/synopsis.txt"
awk '/^DESCRIPTION$/ { on = 1 } on' "$work/joined.txt" >"$work/body.txt"
if [ ! -s "$work/synopsis.txt" ] || [ ! -s "$work/body.txt" ]; then
	echo "FAIL: the rendered page has no SYNOPSIS or no DESCRIPTION section"
	exit 1
fi

if ! "$nm" -D --defined-only "$LIBALLOC" >"$work/nm.out"; then
	echo "FAIL: $nm -D --defined-only $LIBALLOC failed"
	exit 1
fi
checked=0
while read -r f1 f2 f3; do
	if [ -n "$f3" ]; then type=$f2 sym=$f3; else type=$f1 sym=$f2; fi
	sym=${sym%%@*}
	case $type in A) continue ;; esac
	case $sym in
	__libc_* | __posix_memalign | _init | _fini | _edata | _end | __bss_start) continue ;;
	esac
	name=${sym#"$prefix"}
	checked=$((checked + 1))
	if ! grep -qwF -- "$name" "$work/synopsis.txt"; then
		echo "FAIL: $name (exported as $sym) is not in the SYNOPSIS of $page"
		status=1
	fi
	if ! grep -qwF -- "$name" "$work/body.txt"; then
		echo "FAIL: $name (exported as $sym) is not described in $page"
		status=1
	fi
done <"$work/nm.out"
if [ $checked -eq 0 ]; then
	echo "FAIL: $nm found no exported names in $LIBALLOC"
	status=1
fi

[ $status -eq 0 ] && echo "PASS: doc/alloc.3 renders cleanly and documents all $checked exported names"
exit $status
