#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# sqlite3 on liballoc. A table of 100,000 rows is built with a recursive
# CTE, indexed, queried with aggregates, joins and sorts, updated, deleted
# from and vacuumed, in memory and in a database file. sqlite3's page cache
# and statement memory come from malloc, so this mixes many small blocks
# with page-sized ones. Each run happens on the system allocator and with
# LD_PRELOAD=$LIBALLOC; stdout, stderr and exit status must be identical.
#
# Needs LIBALLOC=/abs/path/liballoc.so (exit 77 = skip without it or
# without sqlite3).
set -u

. "$(dirname "$0")/lib/compare.sh"
compare_setup sqlite sqlite3
cat >"$work/script.sql" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 100000)
INSERT INTO t
SELECT x, (x * 7919) % 1000,
       substr('abcdefghijklmnopqrstuvwxyz', (x * 31) % 26 + 1, x % 10 + 1) || (x % 97),
       ((x * 13) % 1000) / 7.0
FROM cnt;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b, c);
SELECT count(*), sum(a), printf('%.4f', total(c)), min(b), max(b) FROM t;
SELECT a, count(*), printf('%.4f', avg(c)) FROM t GROUP BY a ORDER BY a LIMIT 10;
SELECT b, count(*) FROM t GROUP BY b ORDER BY count(*) DESC, b LIMIT 10;
SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE a = 17 ORDER BY id LIMIT 50);
SELECT count(*) FROM t t1 JOIN t t2 ON t1.a = t2.a WHERE t1.id < 3000 AND t2.id < 3000;
SELECT id, b, printf('%.4f', c) FROM t ORDER BY c DESC, b, id LIMIT 5;
SELECT length(group_concat(b, '')) FROM t;
UPDATE t SET b = b || '-' || a WHERE a < 300;
DELETE FROM t WHERE a % 3 = 0;
SELECT count(*), sum(length(b)) FROM t;
CREATE TABLE u AS SELECT a, group_concat(b, ' ') AS bs FROM t GROUP BY a;
SELECT count(*), sum(length(bs)), max(length(bs)) FROM u;
SELECT a, substr(bs, 1, 40) FROM u ORDER BY length(bs) DESC, a LIMIT 3;
DROP INDEX t_b;
VACUUM;
PRAGMA integrity_check;
SELECT count(*) FROM t WHERE b LIKE '%abc%';
EOF

run memory sqlite3 :memory: ".read ../script.sql"
run file sqlite3 test.db ".read ../script.sql"
run reopen sqlite3 test.db "SELECT count(*), sum(a), max(b) FROM t; PRAGMA integrity_check;"

[ $status -eq 0 ] && echo "PASS: sqlite3 gives identical output on liballoc"
exit $status
