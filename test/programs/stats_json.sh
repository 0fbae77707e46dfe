#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# malloc_stats_print's JSON ("J") must be valid JSON, with and without the
# omit flags, and hold the sections the options ask for; the text form must
# be framed and mention the totals. The helper test/programs/stats_json
# (built by make on the C library) is run with LD_PRELOAD=$LIBALLOC, and
# python3's json module is the parser.
#
# Needs LIBALLOC=/abs/path/liballoc.so and python3 (exit 77 = skip).
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
prog_need python3
prog_helper stats_json
prog_workdir stats-json

status=0
# check OPTS PYTHON-EXPRESSION: the JSON for OPTS parses and the expression
# (over the parsed document d) is true.
check() {
	local opts=$1 expr=$2
	if ! LD_PRELOAD=$LIBALLOC "$helper" "$opts" >"$work/out.json"; then
		echo "FAIL: the helper failed with opts '$opts'"
		status=1
		return
	fi
	if ! python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
j = d['jemalloc']
ok = $expr
sys.exit(0 if ok else 1)
" "$work/out.json"; then
		echo "FAIL: opts '$opts': not valid JSON or '$expr' is false; output:"
		head -c 2000 "$work/out.json"
		echo
		status=1
	else
		echo "ok: opts '$opts'"
	fi
}

# A build without statistics (configure --disable-stats) prints the general
# part only: check that, and nothing more can be checked.
LD_PRELOAD=$LIBALLOC "$helper" J >"$work/probe.json" 2>/dev/null
if python3 -c "
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))['jemalloc']['config']['stats'] is False else 1)
" "$work/probe.json" 2>/dev/null; then
	echo "built without statistics: only the general part is printed"
	check J "all(k in j for k in ('version', 'config', 'opt', 'arenas')) \
		and 'stats' not in j and 'stats.arenas' not in j"
	exit $status
fi

check J "all(k in j for k in ('version', 'config', 'opt', 'arenas', 'stats', 'stats.arenas')) \
	and j['stats']['allocated'] <= j['stats']['active'] <= j['stats']['resident'] <= j['stats']['mapped'] \
	and 'merged' in j['stats.arenas'] and '0' in j['stats.arenas'] \
	and len(j['stats.arenas']['merged']['bins']) == j['arenas']['nbins'] \
	and sum(b['curregs'] * s['size'] for b, s in zip(j['stats.arenas']['merged']['bins'], j['arenas']['bin'])) \
	    == j['stats.arenas']['merged']['small']['allocated'] \
	and j['stats.arenas']['merged']['huge']['allocated'] >= 5 * (3 << 20)"
check Jg "'config' not in j and 'opt' not in j and 'stats' in j"
check Jm "'merged' not in j['stats.arenas'] and '0' in j['stats.arenas']"
check Ja "list(j['stats.arenas']) == ['merged']"
check Jma "'stats.arenas' not in j and 'stats' in j"
check Jblh "'bins' not in j['stats.arenas']['merged'] and 'lruns' not in j['stats.arenas']['merged'] and 'hchunks' not in j['stats.arenas']['merged']"
check Jxyz "'opt' in j"

# Text: framed, with the totals line and the size-class tables.
if LD_PRELOAD=$LIBALLOC "$helper" "" >"$work/out.txt" &&
	grep -q '^___ Begin liballoc statistics ___$' "$work/out.txt" &&
	grep -q '^--- End liballoc statistics ---$' "$work/out.txt" &&
	grep -q '^Allocated: [0-9]*, active: [0-9]*' "$work/out.txt" &&
	grep -q '^bins: ' "$work/out.txt" && grep -q '^hchunk: ' "$work/out.txt"; then
	echo "ok: text"
else
	echo "FAIL: text output:"
	head -n 50 "$work/out.txt"
	status=1
fi
exit $status
