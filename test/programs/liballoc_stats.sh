#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# scripts/liballoc-stats on timelines written by liballoc (the helper
# test/programs/timeline under LD_PRELOAD=$LIBALLOC):
#   - summary: peak, when, mean and final agree with the file (--json);
#   - plot of two files: valid XML (python3's parser), an <svg> with the
#     four stacked layers and the resident line per file, the programs and
#     pids in the titles; rsvg-convert renders it to a PNG of the SVG's size;
#   - watch under tmux for 3 s while a program grows: two captures of the
#     pane show the figures and sparklines, and the allocated figure and the
#     line count moved between them; watch ends by itself at the final line;
#   - errors: a missing file, a file that is not a timeline.
#
# Needs LIBALLOC, python3; the plot rendering needs rsvg-convert
# (librsvg2-bin) and the watch test tmux (both installed by scripts/check);
# without them those parts skip.
set -u

. "$(dirname "$0")/lib/preamble.sh"
prog_need_liballoc
prog_need python3
tool=$src/scripts/liballoc-stats
prog_helper timeline
prog_workdir stats
tmux_sock=$work/tmux.sock
prog_on_exit 'tmux -S "$tmux_sock" kill-server 2>/dev/null'

status=0
fail() {
	echo "FAIL: $*"
	status=1
}

# Timelines: a growing program and a steady one.
MALLOC_CONF=stats_timeline:$work/ramp.json,stats_interval_ms:50 LD_PRELOAD=$LIBALLOC \
	"$helper" ramp 1 2>"$work/err" || fail "ramp: $(cat "$work/err")"
if grep -q 'keeps no statistics' "$work/err"; then
	echo "SKIP: built without statistics (--disable-stats): no timeline"
	exit 77
fi
MALLOC_CONF=stats_timeline:$work/busy.json,stats_interval_ms:50 LD_PRELOAD=$LIBALLOC \
	"$helper" busy 1 || fail "busy"

# summary
if ! python3 "$tool" summary --json "$work/ramp.json" >"$work/summary.json"; then
	fail "summary --json failed"
elif python3 - "$work/ramp.json" "$work/summary.json" <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = json.load(open(sys.argv[2]))
t0 = lines[0]['time']
for key in ('allocated', 'active', 'resident', 'mapped', 'dirty'):
    f = s['figures'][key]
    vals = [l[key] for l in lines]
    i = vals.index(max(vals))
    if f['peak'] != max(vals) or abs(f['peak_at_s'] - (lines[i]['time'] - t0)) > 1e-6 \
       or f['final'] != vals[-1] or not min(vals) <= f['mean'] <= max(vals):
        sys.exit('summary %s: %s, file: peak %d at %.3f, final %d' %
                 (key, f, max(vals), lines[i]['time'] - t0, vals[-1]))
if s['lines'] != len(lines) or not s['exited'] or s['program'] != 'timeline':
    sys.exit('summary header: %s' % s)
if s['figures']['allocated']['peak'] < 60 << 20:
    sys.exit('the ramp never reached 60 MiB: %s' % s['figures']['allocated'])
print('ok: summary: peak allocated %.1f MiB at %.2f s, final %.1f MiB (%d lines)' % (
    s['figures']['allocated']['peak'] / 2**20, s['figures']['allocated']['peak_at_s'],
    s['figures']['allocated']['final'] / 2**20, s['lines']))
PY
	:
else
	fail "summary: see above"
fi
if ! python3 "$tool" summary "$work/ramp.json" "$work/busy.json" | grep -q '^  allocated .* MiB'; then
	fail "summary (text) of two files"
fi

# plot
if ! python3 "$tool" plot "$work/ramp.json" "$work/busy.json" -o "$work/m.svg"; then
	fail "plot failed"
elif python3 - "$work/m.svg" "$work/ramp.json" "$work/busy.json" <<'PY'; then
import json, sys
import xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
svg = doc.documentElement
if svg.tagName != 'svg' or svg.getAttribute('xmlns') != 'http://www.w3.org/2000/svg':
    sys.exit('not an SVG document')
if svg.getAttribute('viewBox') != '0 0 %s %s' % (svg.getAttribute('width'), svg.getAttribute('height')):
    sys.exit('viewBox %s does not match the size' % svg.getAttribute('viewBox'))
if svg.getElementsByTagName('image') or svg.getElementsByTagName('script'):
    sys.exit('not self-contained')
titles = [t.firstChild.data for t in svg.getElementsByTagName('title')]
for layer in ('allocated', 'frag', 'dirty', 'retained', 'resident'):
    if titles.count(layer) != 2:
        sys.exit('%d %s layers for 2 files' % (titles.count(layer), layer))
text = ' '.join(t.firstChild.data for t in svg.getElementsByTagName('text') if t.firstChild)
for path in sys.argv[2:]:
    first = json.loads(open(path).readline())
    if '%s (pid %d)' % (first['program'], first['pid']) not in text:
        sys.exit('no title for pid %d' % first['pid'])
for word in ('MiB', 'seconds', 'allocated', 'resident', 'arena'):
    if word not in text:
        sys.exit('no "%s" on the chart' % word)
print('ok: plot: valid self-contained SVG, %s x %s, 2 columns' % (
    svg.getAttribute('width'), svg.getAttribute('height')))
PY
	:
else
	fail "plot: see above"
fi
if ! command -v rsvg-convert >/dev/null 2>&1; then
	echo "skip: rsvg-convert not found (librsvg2-bin): the SVG is not rendered"
elif ! rsvg-convert "$work/m.svg" -o "$work/m.png" 2>"$work/rsvg.err"; then
	fail "rsvg-convert: $(cat "$work/rsvg.err")"
elif python3 - "$work/m.png" "$work/m.svg" <<'PY'; then
import struct, sys, xml.dom.minidom
png = open(sys.argv[1], 'rb').read()
if png[:8] != b'\x89PNG\r\n\x1a\n':
    sys.exit('not a PNG')
w, h = struct.unpack('>II', png[16:24])
svg = xml.dom.minidom.parse(sys.argv[2]).documentElement
if (w, h) != (int(svg.getAttribute('width')), int(svg.getAttribute('height'))) or len(png) < 20000:
    sys.exit('PNG %dx%d, %d bytes' % (w, h, len(png)))
print('ok: rsvg-convert renders it: %dx%d PNG, %d bytes' % (w, h, len(png)))
PY
	:
else
	fail "rsvg-convert output: see above"
fi

# watch under tmux, 3 s, while a program grows.
if ! command -v tmux >/dev/null 2>&1; then
	echo "skip: tmux not found: watch is not tested"
else
	MALLOC_CONF=stats_timeline:$work/live.json,stats_interval_ms:100 LD_PRELOAD=$LIBALLOC \
		"$helper" ramp 4 &
	prog=$!
	tmux -S "$tmux_sock" new-session -d -s watch -x 110 -y 40 \
		"python3 '$tool' watch --refresh 0.2 '$work/live.json'; echo watch-exit-\$?; sleep 30"
	sleep 1.2
	tmux -S "$tmux_sock" capture-pane -p -t watch >"$work/pane1"
	sleep 1.8
	tmux -S "$tmux_sock" capture-pane -p -t watch >"$work/pane2"
	wait "$prog"
	for _ in $(seq 50); do
		tmux -S "$tmux_sock" capture-pane -p -t watch >"$work/pane3"
		grep -q 'watch-exit-' "$work/pane3" && break
		sleep 0.1
	done
	if python3 - "$work/pane1" "$work/pane2" "$work/pane3" <<'PY'; then
import re, sys
p1, p2, p3 = (open(f, encoding='utf-8').read() for f in sys.argv[1:])
def figures(p):
    m = re.search(r'^allocated +([0-9.]+) MiB', p, re.M)
    n = re.search(r'running [0-9.]+ s, ([0-9]+) lines', p)
    if not m or not n or not re.search('[\u2581-\u2588]{5}', p) or '[running]' not in p:
        sys.exit('pane does not show the live view:\n' + p)
    return float(m.group(1)), int(n.group(1))
a1, n1 = figures(p1)
a2, n2 = figures(p2)
if not (a2 > a1 and n2 > n1):
    sys.exit('figures did not move: allocated %.1f -> %.1f MiB, lines %d -> %d' % (a1, a2, n1, n2))
if '[exited]' not in p3 or 'watch-exit-0' not in p3:
    sys.exit('watch did not end at the final line:\n' + p3)
print('ok: watch under tmux: allocated %.1f -> %.1f MiB, lines %d -> %d in 1.8 s; ends at exit'
      % (a1, a2, n1, n2))
PY
		:
	else
		fail "watch: see above"
	fi
fi

# Errors.
out=$(python3 "$tool" summary "$work/none.json" 2>&1)
[ $? = 1 ] && [[ $out == *"none.json: No such file or directory"* ]] || fail "missing file: $out"
printf '{"time": 1, "resident": 2}\nnot json\n' >"$work/bad.json"
out=$(python3 "$tool" plot "$work/bad.json" -o "$work/bad.svg" 2>&1)
[ $? = 1 ] && [[ $out == *"bad.json:2: not a timeline line"* ]] || fail "bad file: $out"
[ $status = 0 ] && echo "ok: errors: missing file, not a timeline"
exit $status
