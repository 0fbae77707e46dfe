#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The stats timeline (opt.stats_timeline, opt.stats_interval_ms, the
# timeline.* mallctl nodes), through the helper test/programs/timeline
# (built on the C library, run with LD_PRELOAD=$LIBALLOC); python3's json
# module parses every line.
#   - a 3-second busy program at 100 ms writes 30 +- 3 lines (on a loaded
#     machine: one per 100 ms of the time it ran, stalls measured), each a JSON
#     object with every field, figures consistent (resident = metadata +
#     active + dirty, arenas sum to the totals, classes sorted), the last
#     one final;
#   - a line's figures equal what stats.* read at the line's epoch;
#   - a fork with %p in the path writes a second file, the child's pid in it;
#   - off (no option): no file, and the process has one thread; on without
#     background threads: still one thread;
#   - with background_thread:true a program making no allocator call for
#     1 s still gets its lines;
#   - timeline.* at run time (test/programs/timeline.c, mode ctl).
#
# Needs LIBALLOC=/abs/path/liballoc.so and python3 (exit 77 = skip).
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
prog_need python3
prog_helper timeline
prog_workdir timeline

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
# on CONF CMD...: runs the helper with MALLOC_CONF=CONF under liballoc.
on() {
	local conf=$1
	shift
	MALLOC_CONF=$conf LD_PRELOAD=$LIBALLOC "$helper" "$@"
}

# A build without statistics writes no timeline (and says so).
if on "stats_timeline:$work/probe.json" busy 0.05 2>&1 | grep -q 'keeps no statistics'; then
	echo "SKIP: built without statistics (--disable-stats): no timeline"
	exit 77
fi
rm -f "$work/probe.json"

# check FILE... -- ARG... <<<PYTHON: every line of every FILE parses and is
# consistent; then PYTHON runs with `files` (one list of lines per FILE)
# and sys.argv[1:] = ARG...
check() {
	local files=
	while [ "$1" != -- ]; do
		files+="$1"$'\n'
		shift
	done
	shift
	TL_FILES=$files python3 - "$@" <<PY
import json, os, sys
keys = ['time', 'pid', 'ppid', 'program', 'epoch', 'final', 'interval_ms', 'allocated', 'active',
        'resident', 'mapped', 'retained', 'metadata', 'dirty', 'threads', 'arenas',
        'arenas_left', 'top_classes']
files = []
for path in os.environ['TL_FILES'].split('\n')[:-1]:
    lines = []
    for n, text in enumerate(open(path), 1):
        try:
            d = json.loads(text)
        except ValueError as e:
            sys.exit('%s:%d: not JSON (%s): %r' % (path, n, e, text[:200]))
        if list(d) != keys:
            sys.exit('%s:%d: keys %s' % (path, n, list(d)))
        if d['resident'] != d['metadata'] + d['active'] + d['dirty']:
            sys.exit('%s:%d: resident != metadata + active + dirty' % (path, n))
        if not d['allocated'] <= d['active'] or not d['active'] <= d['mapped']:
            sys.exit('%s:%d: not allocated <= active <= mapped' % (path, n))
        if d['arenas_left'] == 0 and (sum(a['active'] for a in d['arenas']) != d['active']
                                      or sum(a['dirty'] for a in d['arenas']) != d['dirty']):
            sys.exit('%s:%d: the arenas do not add up to the totals' % (path, n))
        c = d['top_classes']
        if any(x['bytes'] != x['size'] * x['objects'] for x in c) or \
           [x['bytes'] for x in c] != sorted((x['bytes'] for x in c), reverse=True) or \
           sum(x['bytes'] for x in c) > d['allocated']:
            sys.exit('%s:%d: top_classes wrong: %s' % (path, n, c))
        lines.append(d)
    if not lines:
        sys.exit('%s: empty' % path)
    # Only the last line is final (a file the timeline moved away from
    # with timeline.path has none: TL_MOVED=1).
    last = os.environ.get('TL_MOVED') != '1'
    if [d['final'] for d in lines] != [False] * (len(lines) - 1) + [last]:
        sys.exit('%s: only the last line must be final' % path)
    if any(b['time'] < a['time'] or b['epoch'] <= a['epoch'] for a, b in zip(lines, lines[1:])):
        sys.exit('%s: time or epoch goes back' % path)
    if len(set(d['pid'] for d in lines)) != 1 or lines[0]['program'] != 'timeline':
        sys.exit('%s: pid or program wrong' % path)
    files.append(lines)
$(cat)
PY
}

# 1. Three busy seconds at 100 ms: 30 +- 3 lines (the final one included)
# on an idle machine. A loaded machine deschedules the program, and a line
# that falls due while it is off the CPU (so makes no allocator call) is
# written when it runs again: the helper records those stalls (TL_STALLS),
# and each line may be late by what is left of a stall at its due time,
# and by no more. Every gap between two lines is at least the interval (10
# ms less: the coarse clock, the times' milliseconds; the final line comes
# at exit) and at most the interval + 30 ms + that excuse; and there are at
# least one line per 111 ms of the run less the excuses (27 in 3 s on an
# idle machine) and at most 33.
TL_STALLS=$work/busy.stalls on "stats_timeline:$work/busy.json,stats_interval_ms:100" busy 3
if check "$work/busy.json" -- "$work/busy.stalls" <<'PY'; then
lines = files[0]
stalls = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
def excuse(due):
    # The rest of a stall under way when the line fell due (within the
    # coarse clock's 5 ms).
    return max([e - (due - 0.005) for s, e in stalls if s <= due + 0.005 and e >= due - 0.005],
               default=0.0)
excused = 0.0
for k, (a, b) in enumerate(zip(lines, lines[1:])):
    gap = b['time'] - a['time']
    if not b['final'] and gap < 0.090:
        sys.exit('lines %d and %d only %.3f s apart at 100 ms' % (k, k + 1, gap))
    late = excuse(a['time'] + 0.1)
    if gap > 0.130 + late:
        sys.exit('lines %d and %d %.3f s apart at 100 ms (%.3f s of it excused by a stall)' %
                 (k, k + 1, gap, late))
    excused += min(late, max(0.0, gap - 0.1))
span = lines[-1]['time'] - lines[0]['time']
if not int((span - excused) / 0.111) <= len(lines) <= 33:
    sys.exit('%d lines in 3 s at 100 ms (%.2f s excused by stalls: %d at least)' %
             (len(lines), excused, int((span - excused) / 0.111)))
if span < 2.7 or max(d['allocated'] for d in lines) < 10 << 20:
    sys.exit('lines do not span the run')
print('ok: 3 s at 100 ms: %d lines, %.1f s (%d stalls, %.2f s of lateness excused), '
      'peak allocated %.1f MiB' % (len(lines), span, len(stalls), excused,
                                   max(d['allocated'] for d in lines) / 2**20))
PY
	:
else
	fail "busy: see above"
fi

# 2. A line and stats.* at the same epoch agree.
on "stats_timeline:$work/agree.json,stats_interval_ms:100000" agree >"$work/agree.out"
if check "$work/agree.json" -- "$work/agree.out" <<'PY'; then
want = json.load(open(sys.argv[1]))
got = [d for d in files[0] if d['epoch'] == want['epoch']]
if len(got) != 1:
    sys.exit('no line at epoch %d' % want['epoch'])
for k, v in want.items():
    if got[0][k] != v:
        sys.exit('%s: line %s, stats.* %s' % (k, got[0][k], v))
print('ok: the line at epoch %d equals stats.* (%d fields, %d arenas)' %
      (want['epoch'], len(want), len(want['arenas'])))
PY
	:
else
	fail "agree: see above"
fi

# 3. fork with %p: a file per process, each with its own pid and a final line.
if ! on "stats_timeline:$work/fork.%p.json,stats_interval_ms:50" fork 0.3 >"$work/fork.out"; then
	fail "fork: the helper failed"
fi
child=$(sed -n 's/^child //p' "$work/fork.out")
parent_file=$(ls "$work"/fork.*.json 2>/dev/null | grep -v "fork.$child.json")
if [ -z "$child" ] || [ ! -f "$work/fork.$child.json" ] || [ -z "$parent_file" ]; then
	fail "fork: expected two files, the child's fork.$child.json; found: $(ls "$work")"
elif check "$parent_file" "$work/fork.$child.json" -- "$child" <<'PY'; then
parent, child = files
if child[0]['pid'] != int(sys.argv[1]) or parent[0]['pid'] == child[0]['pid']:
    sys.exit('pids: parent %d, child %d' % (parent[0]['pid'], child[0]['pid']))
if len(child) < 3:
    sys.exit('the child wrote %d lines in 0.3 s at 50 ms' % len(child))
print('ok: fork: parent %d lines, child %d lines in its own file' % (len(parent), len(child)))
PY
	:
else
	fail "fork: see above"
fi

# 4. Off: no file, one thread. On (no background thread): still one thread.
mkdir "$work/off"
helper_abs=$(cd "$(dirname "$helper")" && pwd)/timeline
n=$(cd "$work/off" && LD_PRELOAD=$LIBALLOC "$helper_abs" threads)
if [ "$n" != 1 ] || [ -n "$(ls -A "$work/off")" ]; then
	fail "off: $n threads, files: $(ls -A "$work/off")"
else
	echo "ok: off: no file, 1 thread"
fi
n=$(on "stats_timeline:$work/on.json,stats_interval_ms:10" threads)
if [ "$n" != 1 ] || [ ! -s "$work/on.json" ]; then
	fail "on: $n threads (expected 1) or no file"
else
	echo "ok: on without background threads: 1 thread"
fi

# 5. The background thread writes while the program makes no allocator call.
on "background_thread:true,stats_timeline:$work/bg.json,stats_interval_ms:100" sleep 1
if check "$work/bg.json" -- <<'PY'; then
lines = files[0]
if len(lines) < 8:
    sys.exit('%d lines in 1 s of sleep at 100 ms' % len(lines))
print('ok: background thread: %d lines while the program slept 1 s' % len(lines))
PY
	:
else
	fail "background: see above"
fi

# 6. timeline.* at run time.
mkdir "$work/ctl"
out=$(LD_PRELOAD=$LIBALLOC "$helper" ctl "$work/ctl" 2>"$work/ctl.err")
if [ "$out" != ok ]; then
	fail "ctl: $out $(cat "$work/ctl.err")"
elif ! grep -q '^<liballoc>: stats_timeline: cannot open ".*/no/such/dir/x.json" (errno 2); the timeline stops$' \
	"$work/ctl.err"; then
	fail "ctl: no warning for a path that cannot be opened: $(cat "$work/ctl.err")"
elif TL_MOVED=1 check "$work/ctl"/a.*.json -- <<'PY' && check "$work/ctl/b.json" -- <<'PY2'; then
if len(files[0]) != 2:
    sys.exit('%d lines in the first file' % len(files[0]))
PY
b = files[0]
if len(b) != 2:
    sys.exit('%d lines in the second file' % len(b))
print('ok: timeline.* nodes (start, flush, path, interval, stop, errors)')
PY2
	:
else
	fail "ctl: see above"
fi
exit $status
