-- Histories from an event log at size (docs/HISTORIES.md, "Measured"): 10^6 events of 10^4
-- users, 10^5 impressions among them; each way of building the histories (the last 20
-- behaviours before each impression) is timed, then building and scoring in one statement.
-- Run with psql in a scratch database where din is installed and the model din_demo imported
-- (docs/HISTORIES.md shows how), from the root of the checkout:
--     psql -X -d scratch -f test/bench/histories.sql
\set ON_ERROR_STOP 1
\timing on
SELECT setseed(0.5);
DROP TABLE IF EXISTS bench_events, bench_impressions;
CREATE TABLE bench_events AS
SELECT u AS user_id, 1000 + (random() * 1999)::bigint AS item_id,
       timestamptz '2024-06-01' + make_interval(mins => u % 1440 + 5 * k, secs => random() * 240) AS ts
FROM generate_series(1, 10000) u, generate_series(1, 100) k;
CREATE TABLE bench_impressions AS
SELECT u AS user_id, 1000 + (random() * 1999)::bigint AS ad_id,
       timestamptz '2024-06-01' + make_interval(mins => u % 1440 + (random() * 520)::int) AS ts,
       random() < 0.3 AS clicked
FROM generate_series(1, 10000) u, generate_series(1, 10) k;
VACUUM ANALYZE bench_events, bench_impressions;

\echo '== 1. LATERAL, ORDER BY ts DESC LIMIT 20, no index: each impression scans every event,'
\echo '      so only the 50 impressions of 5 users'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON, TIMING OFF)
SELECT i.*, h.items
FROM (SELECT * FROM bench_impressions WHERE user_id <= 5) i
CROSS JOIN LATERAL (
    SELECT array_agg(item_id ORDER BY ts) AS items
    FROM (SELECT item_id, ts FROM bench_events e
          WHERE e.user_id = i.user_id AND e.ts < i.ts
          ORDER BY ts DESC LIMIT 20) last) h;

\echo '== 2. the same with an index on events (user_id, ts)'
CREATE INDEX ON bench_events (user_id, ts);
VACUUM ANALYZE bench_events;
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON, TIMING OFF)
SELECT i.*, h.items
FROM bench_impressions i
CROSS JOIN LATERAL (
    SELECT array_agg(item_id ORDER BY ts) AS items
    FROM (SELECT item_id, ts FROM bench_events e
          WHERE e.user_id = i.user_id AND e.ts < i.ts
          ORDER BY ts DESC LIMIT 20) last) h;

\echo '== 3. what an aggregate over all earlier events (a din_history(item, ts, 20)) must read'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON, TIMING OFF)
SELECT i.*, h.items
FROM bench_impressions i
CROSS JOIN LATERAL (
    SELECT (array_agg(item_id ORDER BY ts))[greatest(count(*) - 19, 1):] AS items
    FROM bench_events e
    WHERE e.user_id = i.user_id AND e.ts < i.ts) h;

\echo '== 4. a window frame over events and impressions in one sort'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON, TIMING OFF)
SELECT user_id, ad_id, ts, clicked, items
FROM (SELECT *, array_agg(item_id) FILTER (WHERE ad_id IS NULL)
                    OVER (PARTITION BY user_id ORDER BY n RANGE BETWEEN 19 PRECEDING AND CURRENT ROW) AS items
      FROM (SELECT *, count(item_id) OVER (PARTITION BY user_id ORDER BY ts, ad_id NULLS LAST
                                            ROWS UNBOUNDED PRECEDING) AS n
            FROM (SELECT user_id, item_id, NULL::bigint AS ad_id, ts, NULL::boolean AS clicked
                  FROM bench_events
                  UNION ALL
                  SELECT user_id, NULL, ad_id, ts, clicked FROM bench_impressions) u) numbered) w
WHERE ad_id IS NOT NULL;

\echo '== 5. built as in 2, scored with din_demo and evaluated in one statement'
SELECT round(auc(p, clicked)::numeric, 4) AS auc, count(*)
FROM (SELECT i.clicked, din_score(h.items, i.ad_id, model => 'din_demo', history_time => h.times,
                                  at => i.ts) AS p
      FROM bench_impressions i
      CROSS JOIN LATERAL (
          SELECT array_agg(item_id ORDER BY ts) AS items, array_agg(ts ORDER BY ts) AS times
          FROM (SELECT item_id, ts FROM bench_events e
                WHERE e.user_id = i.user_id AND e.ts < i.ts
                ORDER BY ts DESC LIMIT 20) last) h) s;

\echo '== 6. din_score alone over histories built beforehand'
CREATE TEMP TABLE built AS
SELECT i.*, h.items, h.times
FROM bench_impressions i
CROSS JOIN LATERAL (
    SELECT array_agg(item_id ORDER BY ts) AS items, array_agg(ts ORDER BY ts) AS times
    FROM (SELECT item_id, ts FROM bench_events e
          WHERE e.user_id = i.user_id AND e.ts < i.ts
          ORDER BY ts DESC LIMIT 20) last) h;
SELECT round(auc(p, clicked)::numeric, 4) AS auc, count(*)
FROM (SELECT clicked, din_score(items, ad_id, model => 'din_demo', history_time => times,
                                at => ts) AS p FROM built) s;
DROP TABLE bench_events, bench_impressions;
