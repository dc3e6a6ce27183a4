\set ECHO none
-- rank_checks.sql - din_rank and the array form of din_score against per-row din_score on the
-- fixtures loaded by load_fixtures.sql (test/sql/din_rank.sql, din_rank_timed.sql): each
-- fixture row's history ranks 41 candidates (40 ad ids of its model, one twice); scores must
-- equal per-row din_score to 1e-6 relative, ranks follow score desc, ad_id asc, and top k is
-- the prefix of the full ranking.
\set ECHO all
-- every fixture ad id scores under any history of its model, so any of them is a candidate
CREATE TEMP TABLE cands AS
SELECT variant, array_agg(ad_id ORDER BY id) || (array_agg(ad_id ORDER BY id))[7] AS c
FROM fixture WHERE id % 7 = 3 AND id <= 280 GROUP BY variant;
SELECT variant, cardinality(c) AS candidates FROM cands ORDER BY variant;

CREATE TEMP TABLE per_row AS
SELECT f.variant, f.id, x.ord, x.ad_id,
       din_score(f.history, x.ad_id, model => f.variant, context => f.context,
                 dense => f.dense, history_time => f.history_time, at => f.at) AS p
FROM fixture f JOIN cands USING (variant)
CROSS JOIN LATERAL unnest(cands.c) WITH ORDINALITY AS x(ad_id, ord);

CREATE TEMP TABLE ranked AS
SELECT f.variant, f.id, r.*
FROM fixture f JOIN cands USING (variant)
CROSS JOIN LATERAL din_rank(f.history, cands.c, model => f.variant, context => f.context,
                            dense => f.dense, history_time => f.history_time, at => f.at) r;

ANALYZE per_row;
ANALYZE ranked;

-- the array form: candidate order, per-row scores
CREATE TEMP TABLE arrayed AS
SELECT a.variant, a.id, x.p, x.ord
FROM (SELECT f.variant, f.id,
             din_score(f.history, cands.c, model => f.variant, context => f.context,
                       dense => f.dense, history_time => f.history_time, at => f.at) AS ps
      FROM fixture f JOIN cands USING (variant)) a
CROSS JOIN LATERAL unnest(a.ps) WITH ORDINALITY AS x(p, ord);
ANALYZE arrayed;
SELECT a.variant, count(*) AS scores,
       count(*) FILTER (WHERE abs(a.p - r.p) > 1e-6 * abs(r.p)) AS mismatches
FROM arrayed a JOIN per_row r USING (variant, id, ord)
GROUP BY a.variant ORDER BY a.variant;

-- din_rank returns each candidate once per occurrence, with its per-row score
SELECT variant, count(*) AS rows, count(*) FILTER (WHERE mismatch) AS mismatches
FROM (SELECT r.variant, r.id, r.ad_id,
             bool_or(abs(r.score - p.p) > 1e-6 * abs(p.p)) AS mismatch
      FROM (SELECT variant, id, ad_id, score,
                   row_number() OVER (PARTITION BY variant, id, ad_id ORDER BY rank) AS dup
            FROM ranked) r
      JOIN (SELECT variant, id, ad_id, p,
                   row_number() OVER (PARTITION BY variant, id, ad_id ORDER BY ord) AS dup
            FROM per_row) p USING (variant, id, ad_id, dup)
      GROUP BY r.variant, r.id, r.ad_id, r.dup) s
GROUP BY variant ORDER BY variant;
SELECT (SELECT count(*) FROM ranked) = (SELECT count(*) FROM per_row) AS same_count;

-- ranks are 1..n in order of score descending, then ad_id ascending
SELECT variant,
       count(*) FILTER (WHERE rank <> row_number) AS wrong_rank,
       count(*) FILTER (WHERE prev_score < score
                           OR (prev_score = score AND prev_id > ad_id)) AS out_of_order
FROM (SELECT variant, rank, score, ad_id,
             row_number() OVER w AS row_number,
             lag(score) OVER w AS prev_score, lag(ad_id) OVER w AS prev_id
      FROM ranked WINDOW w AS (PARTITION BY variant, id ORDER BY rank)) s
GROUP BY variant ORDER BY variant;

-- k: top k is the prefix of the full ranking; 0 and NULL candidates give no rows
CREATE TEMP TABLE top5 AS
SELECT f.variant, f.id, t.*
FROM fixture f JOIN cands USING (variant)
CROSS JOIN LATERAL din_rank(f.history, cands.c, 5, f.variant, f.context, f.dense,
                            f.history_time, f.at) t;
ANALYZE top5;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (t.ad_id, t.score) IS DISTINCT FROM (r.ad_id, r.score)) AS different
FROM top5 t JOIN ranked r USING (variant, id, rank);
