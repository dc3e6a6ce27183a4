-- A small synthetic click log for din-train's tests (test/t/060_train.pl): each user favours
-- one of 10 categories (item i has category i % 10); ads of the favourite category are mostly
-- clicked, others mostly not. Behaviours come in sessions (5 minutes apart, 3 hours between
-- sessions); an impression's time `at` is half an hour after the last behaviour, or for one
-- impression in four at the last behaviour, which DSIN then ignores. Seeded, so every run
-- trains on the same rows. Validation: the users with user_id % 7 = 3 (every favourite category
-- occurs among them).
SELECT setseed(0.25);
CREATE TABLE items AS SELECT i::bigint AS item_id, (i % 10)::bigint AS cate
  FROM generate_series(1, 200) i;
CREATE TABLE users AS
  SELECT u::bigint AS user_id, u % 10 AS fav,
         (SELECT array_agg(CASE WHEN random() < 0.8 THEN 10 + u % 10 + 10 * floor(random() * 19)
                                ELSE 1 + floor(random() * 200) END::bigint ORDER BY g)
            FROM generate_series(1, 2 + u % 12) g) AS history,
         (SELECT array_agg(timestamptz '2024-01-01' + minutes * interval '1 minute' ORDER BY g)
            FROM (SELECT g, sum(CASE WHEN random() < 0.7 THEN 5 ELSE 180 END) OVER (ORDER BY g)
                              AS minutes
                    FROM generate_series(1, 2 + u % 12) g) s) AS history_time
    FROM generate_series(1, 400) u;
CREATE TABLE impressions AS
  SELECT row_number() OVER () AS id, user_id, history, history_time,
         history_time[cardinality(history_time)]
           + CASE WHEN k = 4 THEN interval '0' ELSE interval '30 minutes' END AS at, ad_id,
         (CASE WHEN ad_id % 10 = fav THEN random() < 0.85 ELSE random() < 0.15 END) AS label,
         ARRAY[user_id % 3] AS context, ARRAY[(user_id % 5) / 5.0, 1.0]::float8[] AS dense
    FROM (SELECT u.*, k, CASE WHEN k % 2 = 0 THEN 10 + fav + 10 * floor(random() * 19)
                              ELSE 1 + floor(random() * 200) END::bigint AS ad_id
            FROM users u, generate_series(1, 4) k) s;
