#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Heap profiling end to end (an --enable-prof build; exit 77 = skip
# otherwise): the helper test/programs/prof_sites, run with
# LD_PRELOAD=$LIBALLOC, makes dumps that real tools read:
#   - three sites holding 60/30/10 % of the live bytes, lg_prof_sample:8:
#     the helper checks each unbiased estimate in the heap_v2 dump within
#     10 % of the truth; `jeprof --text` (libjemalloc-dev), `go tool pprof
#     -top` (golang-go, on the prof_format:pprof dump) and liballoc-prof
#     list the three sites first and in that order; liballoc-prof's flame
#     graph renders with rsvg-convert (librsvg2-bin);
#   - prof_leak: one summary line for a deliberate leak (about the leaked
#     bytes, naming the final dump, which jeprof reads), none when all is
#     freed; without prof:true, prof.dump fails and writes nothing;
#   - the prof.* and thread.prof.* nodes (helper mode "controls");
#     lg_prof_interval and prof_gdump dumps;
#   - prof.dump while 4 threads allocate; a thread that exits holding
#     samples (named by thread.prof.name in the dump) whose blocks main
#     frees; fork (parent and child dump under their own pids); a
#     dlopen'ed library's allocation site symbolised through the mappings;
#   - the three sites again under valgrind memcheck (when installed).
# A tool that is not installed skips its checks with a note.
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
prog_helper prof_sites
srcdir=$src
liballoc_prof="python3 $srcdir/scripts/liballoc-prof"
prog_workdir prof

LD_PRELOAD=$LIBALLOC "$helper" noleak 2>/dev/null
if [ $? = 77 ]; then
	echo "SKIP: $LIBALLOC has no heap profiling (configure --enable-prof)"
	exit 77
fi

status=0
ok() { echo "ok: $*"; }
bad() {
	echo "FAIL: $*"
	status=1
}
have() { command -v "$1" >/dev/null 2>&1; }

# in_order FILE: the first three lines naming a site name them in the order
# site_sixty, site_thirty, site_ten.
in_order() {
	[ "$(grep -o -E 'site_(sixty|thirty|ten)' "$1" | head -n 3 | tr '\n' ' ')" = \
		"site_sixty site_thirty site_ten " ]
}

# --- three sites -------------------------------------------------------------
conf=prof:true,lg_prof_sample:8
if LD_PRELOAD=$LIBALLOC MALLOC_CONF=$conf "$helper" sites "$work/sites.heap" >"$work/est.txt"; then
	ok "heap_v2 estimates within 10 %: $(tr '\n' ';' <"$work/est.txt")"
else
	bad "site estimates: $(cat "$work/est.txt")"
fi
if have jeprof; then
	jeprof --text "$helper" "$work/sites.heap" >"$work/jeprof.txt" 2>"$work/jeprof.err"
	if in_order "$work/jeprof.txt"; then
		ok "jeprof --text: $(grep -E 'site_' "$work/jeprof.txt" | head -n 3 | tr -s ' ' | tr '\n' ';')"
	else
		bad "jeprof --text does not list the sites in order:"
		head -n 12 "$work/jeprof.txt" "$work/jeprof.err"
	fi
else
	echo "note: jeprof not installed (libjemalloc-dev): not checked"
fi
if LD_PRELOAD=$LIBALLOC MALLOC_CONF=$conf,prof_format:pprof "$helper" sites "$work/sites.pb" >/dev/null; then
	if have go; then
		HOME=${HOME:-$work} go tool pprof -top "$helper" "$work/sites.pb" >"$work/pprof.txt" 2>"$work/pprof.err"
		if in_order "$work/pprof.txt"; then
			ok "go tool pprof -top: $(grep -E 'site_' "$work/pprof.txt" | head -n 3 | tr -s ' ' | tr '\n' ';')"
		else
			bad "go tool pprof -top does not list the sites in order:"
			head -n 12 "$work/pprof.txt" "$work/pprof.err"
		fi
	else
		echo "note: go not installed (golang-go): pprof output not checked"
	fi
	$liballoc_prof --top 5 "$work/sites.pb" >"$work/lp-pb.txt" 2>&1 && in_order "$work/lp-pb.txt" &&
		ok "liballoc-prof on the pprof dump" || {
		bad "liballoc-prof on the pprof dump:"
		cat "$work/lp-pb.txt"
	}
else
	bad "prof_format:pprof dump failed"
fi
if $liballoc_prof --top 5 "$work/sites.heap" >"$work/lp.txt" 2>&1 && in_order "$work/lp.txt"; then
	ok "liballoc-prof top: $(grep -E 'site_' "$work/lp.txt" | tr -s ' ' | tr '\n' ';')"
else
	bad "liballoc-prof --top:"
	cat "$work/lp.txt"
fi
if $liballoc_prof --svg "$work/flame.svg" "$work/sites.heap" >"$work/lp-svg.txt" 2>&1 &&
	grep -q 'site_sixty' "$work/flame.svg"; then
	if have rsvg-convert; then
		if rsvg-convert "$work/flame.svg" -o "$work/flame.png" 2>"$work/rsvg.err" &&
			[ -s "$work/flame.png" ]; then
			ok "flame graph rendered by rsvg-convert ($(wc -c <"$work/flame.png") bytes of PNG)"
		else
			bad "rsvg-convert cannot render the flame graph: $(cat "$work/rsvg.err")"
		fi
	else
		echo "note: rsvg-convert not installed (librsvg2-bin): flame graph not rendered"
	fi
else
	bad "liballoc-prof --svg: $(cat "$work/lp-svg.txt")"
fi

# --- leaks ----------------------------------------------------------------------
leakconf="prof:true,prof_leak:true,prof_final:true,lg_prof_sample:10,prof_prefix:$work/leak"
LD_PRELOAD=$LIBALLOC MALLOC_CONF=$leakconf "$helper" leak 2>"$work/leak.err"
line=$(grep 'leak summary' "$work/leak.err")
leaked=$(sed -n 's/.*leak summary: ~\([0-9]*\) bytes in ~\([0-9]*\) objects.*/\1/p' "$work/leak.err")
final=$(sed -n 's/.*heap profile: \(.*\)$/\1/p' "$work/leak.err")
# 2000 blocks of 1000 bytes, usable size 1024 each.
if [ "$(grep -c 'leak summary' "$work/leak.err")" = 1 ] && [ -n "$leaked" ] &&
	[ "$leaked" -gt 1740000 ] && [ "$leaked" -lt 2360000 ] && [ -s "$final" ]; then
	ok "leak reported: $line"
	if have jeprof; then
		jeprof --text "$helper" "$final" 2>/dev/null | grep -q leaky_site &&
			ok "the final dump names the leaking site" ||
			bad "jeprof does not find leaky_site in $final"
	fi
else
	bad "leak report: $(cat "$work/leak.err")"
fi
LD_PRELOAD=$LIBALLOC MALLOC_CONF=${leakconf}_none "$helper" noleak 2>"$work/noleak.err"
if [ -s "$work/noleak.err" ]; then
	bad "a program that frees everything got: $(cat "$work/noleak.err")"
elif ! ls "$work"/leak_none.*.f.heap >/dev/null 2>&1; then
	bad "no final dump $work/leak_none.*.f.heap"
else
	ok "nothing reported when everything is freed (final dump $(ls "$work"/leak_none.*.f.heap))"
fi
if LD_PRELOAD=$LIBALLOC "$helper" sites "$work/off.heap" >/dev/null 2>&1 || [ -e "$work/off.heap" ]; then
	bad "prof.dump without prof:true succeeded"
else
	ok "prof.dump fails without prof:true"
fi

# --- controls, interval and gdump dumps ------------------------------------------
mkdir "$work/controls"
if LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:12 "$helper" controls "$work/controls" \
	2>"$work/controls.err"; then
	ok "prof.active, thread.prof.active, prof.reset, prof.lg_sample, thread.prof.name and the other nodes"
else
	bad "controls: $(cat "$work/controls.err")"
fi
LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:10,lg_prof_interval:20,prof_gdump:true,prof_prefix:$work/iv \
	"$helper" sites "$work/iv.heap" 2000 >/dev/null
ni=$(find "$work" -name 'iv.*.i*.heap' | wc -l)
nu=$(find "$work" -name 'iv.*.u*.heap' | wc -l)
if [ "$ni" -ge 1 ] && [ "$nu" -ge 1 ] && [ -s "$(find "$work" -name 'iv.*.i0.heap' | head -n 1)" ]; then
	ok "lg_prof_interval:20 wrote $ni interval dumps, prof_gdump $nu"
else
	bad "interval/gdump dumps: $(ls "$work" | grep '^iv')"
fi

# --- threads, fork, dlopen ------------------------------------------------------
mkdir "$work/threads"
if LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:12 "$helper" threads "$work/threads" &&
	[ "$(ls "$work"/threads/threads.*.heap | wc -l)" = 20 ] &&
	! grep -L '^MAPPED_LIBRARIES:' "$work"/threads/*.heap | grep -q . &&
	grep -q '^  t[0-9]*: [1-9][0-9]*: [0-9]* \[0: 0\] hoarder$' "$work/threads/hoarded.heap" &&
	! grep -q 'hoarder$' "$work/threads/freed.heap"; then
	ok "20 dumps while 4 threads allocate; an exited thread's samples counted, then freed"
else
	bad "threads: $(ls "$work/threads")"
	grep -H 'hoarder' "$work"/threads/hoarded.heap "$work"/threads/freed.heap
fi
LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:12,prof_prefix:$work/fork "$helper" fork >"$work/fork.txt"
cpid=$(sed -n 's/^child \([0-9]*\) 0$/\1/p' "$work/fork.txt")
ppid=$(sed -n 's/^parent \([0-9]*\) 0$/\1/p' "$work/fork.txt")
if [ -n "$cpid" ] && [ -n "$ppid" ] && [ "$cpid" != "$ppid" ] &&
	[ -s "$work/fork.$cpid.0.m0.heap" ] && [ -s "$work/fork.$ppid.0.m0.heap" ]; then
	ok "fork: child $cpid and parent $ppid dump under their own pids"
else
	bad "fork: $(cat "$work/fork.txt"); files: $(ls "$work" | grep fork)"
fi
if have cc; then
	printf '#include <stdlib.h>\nvoid *lib_alloc_site(size_t n) { void *p = malloc(n); __asm__ volatile("" : : "r"(p) : "memory"); return p; }\n' >"$work/lib.c"
	cc -O2 -g -shared -fPIC -o "$work/libprofsite.so" "$work/lib.c"
	if LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:10 "$helper" dlopen "$work/libprofsite.so" "$work/dl.heap" &&
		grep -q 'libprofsite.so' "$work/dl.heap"; then
		if ! have jeprof || jeprof --text "$helper" "$work/dl.heap" 2>/dev/null | head -n 3 | grep -q lib_alloc_site; then
			ok "a dlopen'ed library's site is named through the mappings"
		else
			bad "jeprof does not name lib_alloc_site: $(jeprof --text "$helper" "$work/dl.heap" 2>&1 | head -n 5)"
		fi
	else
		bad "dlopen: no dump or no mapping of the library"
	fi
fi

# --- valgrind -----------------------------------------------------------------
method=$(LD_PRELOAD=$LIBALLOC "$helper" method)
if [ "$method" = libunwind ]; then
	# libunwind probes addresses with write(2) of stack bytes, which
	# memcheck reports as uninitialised.
	echo "note: backtraces by libunwind: not run under valgrind"
elif have valgrind; then
	if LD_PRELOAD=$LIBALLOC MALLOC_CONF=prof:true,lg_prof_sample:8 timeout 600 valgrind --tool=memcheck \
		--soname-synonyms=somalloc=nouserintercepts --error-exitcode=9 --errors-for-leak-kinds=none -q \
		"$helper" sites "$work/vg.heap" 3000 >"$work/vg.txt" 2>&1; then
		ok "under valgrind: $(grep -c estimated "$work/vg.txt") sites within 10 %, no memcheck error"
	else
		bad "under valgrind: $(tail -n 20 "$work/vg.txt")"
	fi
else
	echo "note: valgrind not installed: not run under memcheck"
fi
exit $status
