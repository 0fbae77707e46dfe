#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# CPython on liballoc. With PYTHONMALLOC=malloc every Python object goes
# through malloc/realloc/free, so this is a heavy, realistic workload:
# dict/list/str churn, sorting, a JSON round trip, bytearray growth and four
# threads. The script's output is deterministic; it is run once on the
# system allocator and once with LD_PRELOAD=$LIBALLOC, and the two outputs
# (stdout, stderr, exit status) must match byte for byte. A ctypes probe
# also checks that malloc really resolves into liballoc in the preloaded run.
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip without it or
# without python3).
set -u

. "$(dirname "$0")/lib/compare.sh"
compare_setup python python3
# The real interpreter, not a wrapper script such as a pyenv shim.
py=$(python3 -c 'import sys; print(sys.executable)') || {
	echo "SKIP: python3 does not run"
	exit 77
}

cat >"$work/workload.py" <<'EOF'
import collections, gc, hashlib, json, random, sys, threading

random.seed(12345)

# dict churn: growing string values, deletions, many rehashes
d = {}
for i in range(200000):
    k = "key%d" % random.randrange(50000)
    d[k] = d.get(k, "") + chr(65 + i % 26)
    if i % 7 == 0:
        d.pop("key%d" % random.randrange(50000), None)
h = hashlib.sha256()
for k in sorted(d):
    h.update(k.encode())
    h.update(d[k].encode())
print("dict", len(d), h.hexdigest())

# lists and sorting
floats = [random.random() for _ in range(300000)]
floats.sort()
print("floats", floats[0], floats[len(floats) // 2], floats[-1])
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(1, 12)))
         for _ in range(100000)]
words.sort(key=lambda w: (len(w), w))
print("words", words[:3], words[-3:], hashlib.md5("\n".join(words).encode()).hexdigest())
nested = [[j * i for j in range(i % 50)] for i in range(20000)]
print("nested", sum(map(len, nested)), sum(map(sum, nested)))

# strings
s = "".join(str(i) for i in range(200000))
print("str", len(s), s.count("12345"), hashlib.sha1(s.encode()).hexdigest())
parts = s.split("7")
print("split", len(parts), max(map(len, parts)), "|".join(parts[:5]))

# JSON round trip
obj = {"items": [{"id": i, "name": "n%d" % i, "tags": ["t%d" % (i % 10)] * (i % 5),
                  "v": i / 7} for i in range(50000)]}
text = json.dumps(obj, sort_keys=True)
back = json.loads(text)
assert back == obj
print("json", len(text), hashlib.sha256(text.encode()).hexdigest())

# bytearray growth (realloc)
ba = bytearray()
for i in range(100000):
    ba += bytes([i % 256]) * (i % 17)
print("bytes", len(ba), hashlib.sha256(ba).hexdigest())

# a little threading: each thread builds and sorts its own data
results = [None] * 4
def work(n):
    r = random.Random(n)
    acc = collections.Counter()
    for _ in range(100000):
        acc["x%d" % r.randrange(1000)] += 1
    results[n] = hashlib.sha256(repr(sorted(acc.items())).encode()).hexdigest()
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", results)

del d, floats, words, nested, s, parts, obj, text, back, ba
print("gc", gc.collect() >= 0)
print("done")
EOF

cat >"$work/probe.py" <<'EOF'
import ctypes
addr = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
for line in open("/proc/self/maps"):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if lo <= addr < hi:
        print(f[5] if len(f) > 5 else "?")
        break
EOF

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 LC_ALL=C
run workload "$py" "$work/workload.py"

where=$(LD_PRELOAD=$LIBALLOC "$py" "$work/probe.py" 2>&1)
if [ "$where" != "$lib_real" ]; then
	echo "FAIL: in the preloaded python, malloc resolves to '$where', not $lib_real"
	status=1
fi

[ $status -eq 0 ] && echo "PASS: python ($py) gives identical output on liballoc"
exit $status
