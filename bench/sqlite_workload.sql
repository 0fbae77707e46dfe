-- SQLite workload for the liballoc benchmark suite.
--
--   sqlite3 -bail -batch :memory: ".parameter set @n 200000" ".read sqlite_workload.sql"
--
-- Builds a table of @n rows in an in-memory database (so its pages live in
-- memory obtained from malloc), indexes it, queries, updates and deletes.
-- Each result is checked against a closed form or against the same query run
-- without an index; a wrong result violates the CHECK constraint of table
-- verify, which stops sqlite3 (-bail) with a non-zero exit status.
-- On success the last line printed starts with "OK sqlite".

.bail on
PRAGMA cache_size = -200000;
CREATE TABLE verify(what TEXT, ok INTEGER CHECK (ok IS 1));

CREATE TABLE t(
  id   INTEGER PRIMARY KEY,
  k    INTEGER NOT NULL,
  grp  INTEGER NOT NULL,
  name TEXT NOT NULL,
  body TEXT NOT NULL
);

WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
INSERT INTO t
SELECT x,
       (x * 7919) % 1000003,
       x % 100,
       printf('name-%08d-%s', (x * 104729) % @n, hex(x * 31)),
       substr(replace(hex(zeroblob(160)), '00', 'ab'), 1, 20 + x % 300) || x
FROM c;

INSERT INTO verify SELECT 'row count', count(*) = @n FROM t;
INSERT INTO verify SELECT 'id sum', sum(id) = @n * (@n + 1) / 2 FROM t;
INSERT INTO verify SELECT 'body length',
  sum(length(body)) = (SELECT sum(min(20 + x % 300, 320) + length(x))
                         FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
                               SELECT x FROM c))
FROM t;

CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp_k ON t(grp, k);

-- index range scans agree with full scans
INSERT INTO verify SELECT 'k range',
  (SELECT count(*) || '/' || sum(id) FROM t WHERE k BETWEEN 1000 AND 400000)
  = (SELECT count(*) || '/' || sum(id) FROM t NOT INDEXED WHERE k BETWEEN 1000 AND 400000);
INSERT INTO verify SELECT 'name order',
  (SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY name, id LIMIT 500))
  = (SELECT group_concat(id) FROM (SELECT id FROM t NOT INDEXED ORDER BY name || '', id LIMIT 500));
INSERT INTO verify SELECT 'point lookups',
  (SELECT count(*) FROM t a WHERE a.k IN (SELECT k FROM t WHERE grp = 3)) >= (SELECT count(*) FROM t WHERE grp = 3);

-- grouping and aggregation
CREATE TABLE agg AS SELECT grp, count(*) AS c, sum(length(body)) AS l, max(name) AS m FROM t GROUP BY grp;
INSERT INTO verify SELECT 'groups', count(*) = min(100, @n) AND sum(c) = @n FROM agg;
INSERT INTO verify SELECT 'group sizes', max(c) - min(c) <= 1 FROM agg;

-- join
INSERT INTO verify SELECT 'self join',
  (SELECT count(*) FROM t a JOIN t b ON b.id = a.id + 1 WHERE a.grp = 7)
  = (SELECT count(*) FROM t WHERE grp = 7 AND id < @n);

-- string aggregation (a large temporary string)
INSERT INTO verify SELECT 'group_concat',
  length(group_concat(name, ',')) = sum(length(name)) + count(*) - 1 FROM t;

-- updates grow rows, deletes free pages
UPDATE t SET body = body || '-updated-' || k WHERE grp < 20;
INSERT INTO verify SELECT 'update',
  (SELECT count(*) FROM t WHERE body LIKE '%-updated-%') = (SELECT count(*) FROM t WHERE grp < 20);
DELETE FROM t WHERE grp >= 90;
INSERT INTO verify SELECT 'delete',
  (SELECT count(*) FROM t) = @n - (SELECT sum(c) FROM agg WHERE grp >= 90);
INSERT INTO verify SELECT 'index after delete',
  (SELECT count(*) FROM t WHERE k >= 0) = (SELECT count(*) FROM t NOT INDEXED WHERE k + 0 >= 0);

-- sort without an index, window function
INSERT INTO verify SELECT 'window',
  (SELECT max(rn) FROM (SELECT row_number() OVER (PARTITION BY grp ORDER BY body DESC) AS rn FROM t))
  = (SELECT max(c) FROM agg WHERE grp < 90);

DROP INDEX t_name;
VACUUM;
INSERT INTO verify SELECT 'after vacuum', count(*) = (SELECT count(*) FROM t NOT INDEXED) FROM t;

SELECT 'OK sqlite n=' || @n || ' rows=' || (SELECT count(*) FROM t) || ' checks=' || (SELECT count(*) FROM verify);
