#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# scripts/bench --timeline: two workloads (pair, and sqlite when sqlite3 is
# there) under glibc and liballoc in tiny mode, one round, a sample every
# 20 ms. Each run leaves a VmRSS file (liballoc-stats record) and the
# liballoc runs their own stats timeline, every line valid; each workload
# gets one chart (valid XML) with a column per allocator, the liballoc
# column with its breakdown, and latest.md links it. The workloads are
# built into a temporary directory (BENCH_BIN).
#
# Environment: LIBALLOC (set by make check), ALLOC_SRCDIR. Exit 77 when
# LIBALLOC or python3 is missing.
set -u
. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc 77
prog_need python3
LIBALLOC=$(readlink -f "$LIBALLOC")
prog_workdir bench-timeline

only=(pair)
command -v sqlite3 >/dev/null 2>&1 && only+=(sqlite)
export LIBALLOC BENCH_BIN=$work/bin
if ! bash "$src/scripts/bench" --tiny --rounds 1 --libs glibc,liballoc --no-install --no-build \
	--timeout 120 --timeline --interval-ms 20 --out "$work/results" --only "${only[@]}" \
	>"$work/out.log" 2>&1; then
	cat "$work/out.log"
	echo "FAIL: scripts/bench --timeline failed"
	exit 1
fi
if grep -q 'keeps no statistics' "$work"/results/logs/*.liballoc.1.log; then
	echo "SKIP: built without statistics: liballoc writes no timeline"
	exit 77
fi
python3 - "$work/results" "${only[@]}" <<'PY'
import glob, json, os, sys
import xml.dom.minidom
out, workloads = sys.argv[1], sys.argv[2:]
md = open(os.path.join(out, 'latest.md')).read()
for w in workloads:
    for a in ('glibc', 'liballoc'):
        rss = [json.loads(l) for l in open('%s/timelines/%s.%s.1.rss.json' % (out, w, a))]
        if not rss or not rss[-1]['final'] or any(r['source'] != 'proc' for r in rss):
            sys.exit('%s %s: bad VmRSS file' % (w, a))
        if max(r['resident'] for r in rss) <= 0:
            sys.exit('%s %s: no VmRSS sampled' % (w, a))
    own = glob.glob('%s/timelines/%s.liballoc.1.[0-9]*.json' % (out, w))
    if not own:
        sys.exit('%s: no liballoc timeline' % w)
    lines = [json.loads(l) for l in open(own[0])]
    if not lines[-1]['final'] or 'allocated' not in lines[0]:
        sys.exit('%s: liballoc timeline without its final line' % w)
    svg = xml.dom.minidom.parse('%s/timelines/%s.svg' % (out, w)).documentElement
    titles = [t.firstChild.data for t in svg.getElementsByTagName('title')]
    # glibc: VmRSS only; liballoc: its four layers, resident and VmRSS
    if titles.count('vmrss') != 2 or titles.count('allocated') != 1 or titles.count('resident') != 1:
        sys.exit('%s: chart has %s' % (w, titles))
    if '[%s](timelines/%s.svg)' % (w, w) not in md:
        sys.exit('%s: latest.md does not link the chart' % w)
    print('ok: %s: VmRSS for glibc and liballoc, liballoc timeline %d lines, chart linked'
          % (w, len(lines)))
PY
