"""Python workload for the liballoc benchmark suite.

Run as  PYTHONMALLOC=malloc python3 py_workload.py [--tiny | --quick | --scale F]
so that every Python object allocation goes through the C allocator under
test (LD_PRELOAD). Uses only builtins (no imports besides sys), a private
random generator and a private checksum, so the output is the same on every
Python 3 and every run. It checks its own invariants as it goes and, for the
standard sizes, compares the final checksum with the known value; on any
mismatch it prints FAIL and exits 1. On success it prints a line starting
with "OK py".
"""

import sys

MASK = (1 << 64) - 1

# checksum expected for each standard size (mode -> value)
EXPECTED = {
    "tiny": 0x0AFA62AEA936584C,
    "quick": 0x79CD96930D88F8B0,
    "full": 0xB926A0DFA67CE133,
}


class Rng:
    """64-bit LCG (Knuth MMIX constants), top bits used."""

    __slots__ = ("s",)

    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & MASK
        return self.s >> 33

    def below(self, n):
        return self.next() % n


class Sum:
    """Order-dependent 64-bit checksum over ints and strings."""

    __slots__ = ("v",)

    def __init__(self):
        self.v = 1469598103934665603

    def add_int(self, x):
        self.v = ((self.v ^ (x & MASK)) * 1099511628211) & MASK

    def add_str(self, s):
        v = self.v
        for ch in s.encode("utf-8"):
            v = ((v ^ ch) * 1099511628211) & MASK
        self.v = v


def fail(msg):
    print("FAIL py: " + msg, file=sys.stderr)
    sys.exit(1)


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "qu", "ph", "ing", "or", "el"]


def make_word(rng):
    n = 1 + rng.below(4)
    return "".join(SYLLABLES[rng.below(len(SYLLABLES))] for _ in range(n))


def task_words(rng, n, ck):
    """Word frequencies in a dict, then the most common ones, sorted."""
    words = [make_word(rng) for _ in range(n)]
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    if sum(counts.values()) != n:
        fail("word counts do not add up")
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    for w, c in top:
        ck.add_str(w)
        ck.add_int(c)
    ck.add_int(len(counts))
    # inverted index: word -> list of positions
    index = {}
    for i, w in enumerate(words):
        index.setdefault(w, []).append(i)
    total = 0
    for w, pos in index.items():
        if len(pos) != counts[w]:
            fail("inverted index disagrees with counts")
        total += pos[-1] - pos[0]
    ck.add_int(total)


def task_strings(rng, n, ck):
    """String formatting, joining, splitting and replacing."""
    lines = []
    for i in range(n):
        lines.append("%d:%s=%x;%s" % (i, make_word(rng), rng.next(), make_word(rng).upper()))
    text = "\n".join(lines)
    back = text.split("\n")
    if back != lines:
        fail("split(join(lines)) != lines")
    acc = 0
    for ln in back:
        head, _, tail = ln.partition("=")
        num, _, word = head.partition(":")
        if int(num) != acc:
            fail("line numbers out of order")
        acc += 1
        tail = tail.replace(";", "|").lower()
        ck.add_int(len(word) * 31 + len(tail))
    ck.add_str(text[-200:])
    ck.add_int(len(text))


class Node:
    def __init__(self, key, payload):
        self.key = key
        self.payload = payload
        self.left = None
        self.right = None


def task_objects(rng, n, ck):
    """Object churn: a binary search tree of Python objects, built and dropped."""
    for _round in range(4):
        root = None
        keys = []
        for _ in range(n // 4):
            k = rng.next()
            keys.append(k)
            node = Node(k, [k & 255, str(k & 4095), (k >> 8, k >> 16)])
            if root is None:
                root = node
                continue
            cur = root
            while True:
                if k < cur.key:
                    if cur.left is None:
                        cur.left = node
                        break
                    cur = cur.left
                else:
                    if cur.right is None:
                        cur.right = node
                        break
                    cur = cur.right
        # in-order walk must give the keys sorted
        out = []
        stack = []
        cur = root
        while stack or cur is not None:
            while cur is not None:
                stack.append(cur)
                cur = cur.left
            cur = stack.pop()
            if cur.payload[1] != str(cur.key & 4095):
                fail("object payload corrupted")
            out.append(cur.key)
            cur = cur.right
        keys.sort()
        if out != keys:
            fail("tree walk not sorted")
        ck.add_int(out[len(out) // 2])
        root = None


def task_lists(rng, n, ck):
    """Lists of tuples: sort, filter, slice, set and dict comprehensions."""
    rows = [(rng.below(1000), make_word(rng), rng.next()) for _ in range(n)]
    rows.sort()
    for a, b in zip(rows, rows[1:]):
        if a > b:
            fail("list not sorted")
    evens = [r for r in rows if r[0] % 2 == 0]
    groups = {}
    for r in rows:
        groups.setdefault(r[0] % 97, []).append(r[2])
    ck.add_int(len(evens))
    ck.add_int(sum(len(v) for v in groups.values()))
    s1 = {r[1] for r in rows[: n // 2]}
    s2 = {r[1] for r in rows[n // 2 :]}
    ck.add_int(len(s1 & s2))
    ck.add_int(len(s1 | s2))
    chunks = [rows[i : i + 100] for i in range(0, len(rows), 100)]
    ck.add_int(sum(len(c) for c in chunks))


def task_bigints(rng, n, ck):
    """Big integer arithmetic (allocates digit arrays of growing size)."""
    a, b = 1, 1
    for _ in range(n):
        a, b = b, a + b
    ck.add_int(a % 1000000007)
    f = 1
    for i in range(1, n // 4 + 1):
        f *= i
    ck.add_int(f % 998244353)
    if (a * b) // b != a:
        fail("big integer arithmetic")


def main(argv):
    mode, scale = "full", 1.0
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--tiny", "tiny"):
            mode, scale = "tiny", 0.005
        elif a in ("--quick", "quick"):
            mode, scale = "quick", 0.2
        elif a in ("--full", "full"):
            mode, scale = "full", 1.0
        elif a == "--scale" and i + 1 < len(argv):
            i += 1
            mode, scale = "custom", float(argv[i])
        else:
            print("usage: py_workload.py [--tiny | --quick | --scale F]", file=sys.stderr)
            return 2
        i += 1

    def sc(base, least):
        return max(least, int(base * scale))

    rng = Rng(20240601)
    ck = Sum()
    rounds = sc(6, 1)
    for _ in range(rounds):
        task_words(rng, sc(200000, 2000) // rounds, ck)
        task_strings(rng, sc(150000, 1000) // rounds, ck)
        task_objects(rng, sc(200000, 2000) // rounds, ck)
        task_lists(rng, sc(150000, 1000) // rounds, ck)
        task_bigints(rng, sc(20000, 500) // rounds, ck)
    expect = EXPECTED.get(mode)
    if expect is not None and ck.v != expect:
        fail("checksum %016x, expected %016x (mode %s)" % (ck.v, expect, mode))
    print("OK py mode=%s scale=%g rounds=%d checksum=%016x" % (mode, scale, rounds, ck.v))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
