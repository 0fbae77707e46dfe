#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Running out of memory in a real program: python3 (PYTHONMALLOC=malloc, so
# every object comes from malloc) limits its own address space to 128 MiB
# above its size at start (RLIMIT_AS, as `ulimit -v` does; relative, so the
# allocators' different static sizes do not matter), fills memory with
# small, large and huge objects until MemoryError, drops them, and carries
# on: building lists, dicts and strings again, then sorting and hashing.
# Only outcomes are printed (not counts), so the output is the same on
# every allocator. Runs on the system allocator and with
# LD_PRELOAD=$LIBALLOC; stdout, stderr and exit status must be identical.
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip without it or
# without python3).
set -u

. "$(dirname "$0")/lib/compare.sh"
compare_setup oom python3
export PYTHONMALLOC=malloc

prog='
import hashlib, resource

def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

limit = vm_size() + (128 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

for size in (48, 3000, 100000, 3 << 20):
    held = []
    try:
        while True:
            held.append(bytearray(size))
            if len(held) * size > (1 << 30):
                raise SystemExit("no MemoryError: the limit is not in force")
    except MemoryError:
        pass
    got = len(held) > 0
    del held
    # Everything is free again: ordinary work must succeed.
    words = [str(i) * 3 for i in range(200000)]
    table = {w: len(w) for w in words}
    blob = bytearray(size) * 4
    digest = hashlib.sha256("".join(sorted(words[:50000])).encode()).hexdigest()
    print(size, "MemoryError", "after some blocks" if got else "at once",
          len(table), len(blob), digest[:16])
'

run exhaust-recover python3 -c "$prog"

[ $status -eq 0 ] && echo "PASS: python3 recovers from MemoryError identically on liballoc"
exit $status
