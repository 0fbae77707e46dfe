# SPDX-License-Identifier: BSD-2-Clause
# The program behind doc/timeline/python3.svg (see doc/timeline.md): three
# phases of building Python objects and dropping most of them, with pauses.
import time

def phase(n, width):
    rows = [('%08d' % i) * width for i in range(n)]
    index = {r[:12] + str(i): i for i, r in enumerate(rows)}
    return rows, index

keep = []
for n, width in ((200000, 4), (400000, 2), (100000, 16)):
    rows, index = phase(n, width)
    time.sleep(0.4)
    keep.append(rows[::10])  # a tenth survives
    del rows, index
    time.sleep(0.6)
keep = None
time.sleep(0.5)
