-- auc, gauc, gauc_clicks and logloss on inputs small enough to check by hand.
CREATE TEMP TABLE imp (campaign text, user_id bigint, score float8, clicked boolean);
INSERT INTO imp VALUES
    ('a', 1, 0.9, true), ('a', 1, 0.1, false),
    ('a', 2, 0.2, true), ('a', 2, 0.8, false), ('a', 2, 0.5, false),
    ('a', 3, 0.3, true),
    ('b', 4, 0.5, true), ('b', 4, 0.5, false), ('b', 5, 0.7, true), ('b', 5, 0.5, false);
-- 3 positives x 3 negatives: 0.9 beats 3, 0.2 beats 1, 0.3 beats 1 -> 5/9
SELECT auc(score, clicked) FROM imp WHERE campaign = 'a';
-- user 1: AUC 1 (2 impressions, 1 click); user 2: AUC 0 (3 impressions, 1 click); user 3 skipped
SELECT gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked) FROM imp WHERE campaign = 'a';
-- a tie counts one half: user 4 has AUC 0.5, user 5 AUC 1
SELECT campaign, auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       round(logloss(score, clicked)::numeric, 15) AS logloss
FROM imp GROUP BY campaign ORDER BY campaign;
-- the sklearn documentation example: 0.75
SELECT auc(s, l) FROM (VALUES (0.1, 0), (0.4, 0), (0.35, 1), (0.8, 1)) v(s, l);
-- integer and smallint labels give the boolean result
SELECT auc(score, clicked::int) AS int4, auc(score, clicked::int::smallint) AS int2,
       gauc(user_id, score, clicked::int) AS gauc_int4, gauc_clicks(user_id, score, clicked::int::smallint) AS gauc_clicks_int2,
       logloss(score, clicked::int) = logloss(score, clicked) AS logloss_int4,
       logloss(score, clicked::int::smallint) = logloss(score, clicked) AS logloss_int2
FROM imp WHERE campaign = 'a';
-- rows with a NULL score, label or user are ignored (whatever the other values are): as above
SELECT auc(score, clicked), round(logloss(score, clicked)::numeric, 15) AS logloss
FROM (SELECT score, clicked FROM imp WHERE campaign = 'a'
      UNION ALL VALUES (NULL::float8, true), (0.0, NULL), (NULL, NULL)) s;
SELECT gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked)
FROM (SELECT user_id, score, clicked FROM imp WHERE campaign = 'a'
      UNION ALL VALUES (1::bigint, NULL::float8, true), (2, 0.0, NULL), (NULL, 0.0, true), (NULL, 0.0, false)) s;
SELECT auc(score, label), logloss(score, label) FROM (VALUES (NULL::float8, 7), (0.5, NULL)) v(score, label);
-- no rows, or one class only: auc and gauc are NULL, logloss is defined when there are rows
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked), logloss(score, clicked)
FROM imp WHERE false;
SELECT auc(score, clicked), gauc(user_id, score, clicked), gauc_clicks(user_id, score, clicked),
       round(logloss(score, clicked)::numeric, 15) AS logloss
FROM imp WHERE clicked;
-- all scores equal: one half
SELECT auc(0.25, i % 3 = 0), gauc(i % 4, 0.25, i % 3 = 0) FROM generate_series(1, 100) i;
-- -0.0 ties with 0.0
SELECT auc(s, l) FROM (VALUES ('-0'::float8, true), ('0'::float8, false)) v(s, l);
-- logloss: -ln(0.5); clipped at 1e-15: -ln(1 - (1 - 1e-15)) and -ln(1e-15)
SELECT logloss(0.5, true), logloss(0.5, 0);
SELECT logloss(1.0, false) AS p1_label0, logloss(0.0, true) AS p0_label1,
       logloss(1.0, true) AS p1_label1, logloss(0.0, 0) AS p0_label0;
-- gauc and gauc_clicks in one query share one state; results as when computed apart
SELECT gauc(user_id, score, clicked) = (SELECT gauc(user_id, score, clicked) FROM imp) AS same_gauc,
       gauc_clicks(user_id, score, clicked) = (SELECT gauc_clicks(user_id, score, clicked) FROM imp) AS same_clicks
FROM imp;
-- window aggregates: running (frame grows), whole partition, and a sliding frame
SELECT campaign, user_id, score, clicked,
       auc(score, clicked) OVER (ORDER BY campaign, user_id, score ROWS UNBOUNDED PRECEDING) AS running_auc,
       auc(score, clicked) OVER (PARTITION BY campaign) AS campaign_auc,
       gauc(user_id, score, clicked) OVER (PARTITION BY campaign) AS campaign_gauc,
       auc(score, clicked) OVER (ORDER BY campaign, user_id, score ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) AS sliding_auc,
       round(logloss(score, clicked) OVER (ORDER BY campaign, user_id, score)::numeric, 12) AS running_logloss
FROM imp ORDER BY campaign, user_id, score;
