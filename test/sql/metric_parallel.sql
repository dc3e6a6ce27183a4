-- The metric aggregates under parallel plans: Partial Aggregate in workers, states combined in
-- the leader, the same values as the serial plan.
CREATE TABLE metric_par (campaign integer, user_id bigint, score float8, clicked boolean);
-- deterministic pseudo-random rows: Knuth multiplicative hashing of i
INSERT INTO metric_par
SELECT i % 3, (i * 7919) % 5003,
       ((i::bigint * 2654435761) % 1000003) / 1000003.0,
       ((i::bigint * 40503) % 65537) < 65537 * (0.15 + 0.5 * ((i::bigint * 2654435761) % 1000003) / 1000003.0)
FROM generate_series(1, 200000) i;
ANALYZE metric_par;
ALTER TABLE metric_par SET (parallel_workers = 2);
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial AS
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       logloss(score, clicked), auc(score, clicked::int) AS auc_int, logloss(score, clicked::int) AS logloss_int
FROM metric_par;
CREATE TEMP TABLE serial_grouped AS
SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       logloss(score, clicked)
FROM metric_par GROUP BY campaign;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       logloss(score, clicked)
FROM metric_par;
CREATE TEMP TABLE parallel AS
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       logloss(score, clicked), auc(score, clicked::int) AS auc_int, logloss(score, clicked::int) AS logloss_int
FROM metric_par;
-- auc and gauc sort every row in the final step: bit-for-bit equal; logloss sums in another order
SELECT p.auc = s.auc AS auc, p.gauc = s.gauc AS gauc, p.gauc_clicks = s.gauc_clicks AS gauc_clicks,
       abs(p.logloss - s.logloss) <= 1e-12 AS logloss, p.auc_int = s.auc AS auc_int,
       abs(p.logloss_int - s.logloss) <= 1e-12 AS logloss_int
FROM parallel p, serial s;
SELECT round(auc::numeric, 12) AS auc, round(gauc::numeric, 12) AS gauc,
       round(gauc_clicks::numeric, 12) AS gauc_clicks, round(logloss::numeric, 12) AS logloss
FROM parallel;
-- GROUP BY under a parallel plan
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked) FROM metric_par GROUP BY campaign;
SELECT g.campaign, g.auc = s.auc AS auc, g.gauc = s.gauc AS gauc, g.gauc_clicks = s.gauc_clicks AS gauc_clicks,
       abs(g.logloss - s.logloss) <= 1e-12 AS logloss
FROM (SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
             logloss(score, clicked)
      FROM metric_par GROUP BY campaign) g
JOIN serial_grouped s USING (campaign) ORDER BY campaign;
RESET enable_hashagg;
SET enable_sort = off;
EXPLAIN (COSTS OFF)
SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked) FROM metric_par GROUP BY campaign;
SELECT g.campaign, g.auc = s.auc AS auc, g.gauc = s.gauc AS gauc, g.gauc_clicks = s.gauc_clicks AS gauc_clicks,
       abs(g.logloss - s.logloss) <= 1e-12 AS logloss
FROM (SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
             logloss(score, clicked)
      FROM metric_par GROUP BY campaign) g
JOIN serial_grouped s USING (campaign) ORDER BY campaign;
RESET enable_sort;
-- the leader only gathers: every state it combines came through a tuple queue as a flat bytea
SET parallel_leader_participation = off;
SELECT p.auc = s.auc AS auc, p.gauc = s.gauc AS gauc, p.gauc_clicks = s.gauc_clicks AS gauc_clicks,
       abs(p.logloss - s.logloss) <= 1e-12 AS logloss
FROM (SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
             logloss(score, clicked) FROM metric_par) p, serial s;
RESET parallel_leader_participation;
-- a filter that leaves one class, and one that leaves no rows: NULL in parallel too
SELECT auc(score, clicked), gauc(user_id, score, clicked), logloss(score, clicked) IS NOT NULL AS logloss
FROM metric_par WHERE clicked;
SELECT auc(score, clicked), gauc(user_id, score, clicked), logloss(score, clicked) FROM metric_par WHERE score > 2;
DROP TABLE metric_par;
-- Parts of 65,536 rows or more (with din preloaded, as here) are sorted into the query's shared
-- memory; the leader keeps up to three where they lie and counts across them in the final step,
-- and merges any more. Each campaign has about 100,000 rows per process.
CREATE TABLE metric_big (campaign integer, user_id bigint, score float8, clicked boolean);
INSERT INTO metric_big
SELECT i % 2, (i::bigint * 7919) % 50021,
       ((i::bigint * 2654435761) % 1000003) / 1000003.0,
       ((i::bigint * 40503) % 65537) < 65537 * (0.15 + 0.5 * ((i::bigint * 2654435761) % 1000003) / 1000003.0)
FROM generate_series(1, 600000) i;
ANALYZE metric_big;
ALTER TABLE metric_big SET (parallel_workers = 4);
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE big_serial AS
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
FROM metric_big;
CREATE TEMP TABLE big_serial_grouped AS
SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
FROM metric_big GROUP BY campaign;
SET max_parallel_workers_per_gather = 2;
SELECT p.auc = s.auc AS auc, p.gauc = s.gauc AS gauc, p.gauc_clicks = s.gauc_clicks AS gauc_clicks
FROM (SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
      FROM metric_big) p, big_serial s;
-- grouped: the parts come through a Gather Merge, or a Gather into a hash table
SET enable_hashagg = off;
SELECT g.campaign, g.auc = s.auc AS auc, g.gauc = s.gauc AS gauc, g.gauc_clicks = s.gauc_clicks AS gauc_clicks
FROM (SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
      FROM metric_big GROUP BY campaign) g
JOIN big_serial_grouped s USING (campaign) ORDER BY campaign;
RESET enable_hashagg;
SET enable_sort = off;
SELECT g.campaign, g.auc = s.auc AS auc, g.gauc = s.gauc AS gauc, g.gauc_clicks = s.gauc_clicks AS gauc_clicks
FROM (SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
      FROM metric_big GROUP BY campaign) g
JOIN big_serial_grouped s USING (campaign) ORDER BY campaign;
RESET enable_sort;
-- four workers: five parts, two of them merged into the leader's rows
SET max_parallel_workers_per_gather = 4;
SELECT p.auc = s.auc AS auc, p.gauc = s.gauc AS gauc, p.gauc_clicks = s.gauc_clicks AS gauc_clicks
FROM (SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
      FROM metric_big) p, big_serial s;
SET max_parallel_workers_per_gather = 2;
-- the Gather rescanned once per outer row: each round's parts are freed when the next begins
SET enable_material = off;
EXPLAIN (COSTS OFF)
SELECT v.x, p.auc FROM (SELECT auc(score, clicked) FROM metric_big) p RIGHT JOIN (VALUES (1), (2), (3)) v(x) ON true;
SELECT v.x, p.auc = s.auc AS auc, p.gauc = s.gauc AS gauc
FROM (SELECT auc(score, clicked), gauc(user_id, score, clicked) FROM metric_big) p
RIGHT JOIN (VALUES (1), (2), (3)) v(x) ON true, big_serial s ORDER BY v.x;
RESET enable_material;
-- an aggregate of a user's own over din_auc_trans, with its own combine function, gets each part
-- as rows, never a reference to shared memory (which only din's own aggregates make)
CREATE FUNCTION pg_temp.larger(a bytea, b bytea) RETURNS bytea LANGUAGE sql PARALLEL SAFE
    AS $$ SELECT CASE WHEN length(b) > length(a) THEN b ELSE a END $$;
CREATE AGGREGATE pg_temp.largest_part(float8, boolean) (SFUNC = din_auc_trans, STYPE = bytea,
    INITCOND = '', COMBINEFUNC = pg_temp.larger, PARALLEL = SAFE);
SELECT length(pg_temp.largest_part(score, clicked)) > 65536 * 8 AS rows FROM metric_big;
DROP TABLE metric_big;
