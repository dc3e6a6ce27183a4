-- Every bad input of the metric aggregates and the error it raises.
\set VERBOSITY default
-- labels other than 0 and 1 name the value (22023)
SELECT auc(0.5, 2);
SELECT auc(0.5, (-1)::smallint);
SELECT gauc(1, 0.5, 3);
SELECT gauc_clicks(1, 0.5, 2::smallint);
SELECT logloss(0.5, 2);
-- NaN and infinite scores (22023)
SELECT auc('NaN', true);
SELECT auc('Infinity', false);
SELECT gauc(1, '-Infinity', true);
SELECT gauc_clicks(1, 'NaN', 1);
SELECT logloss('NaN', true);
SELECT auc(s, true) FROM (VALUES (0.5::float8), ('NaN')) v(s);
-- logloss wants probabilities
SELECT logloss(1.5, true);
SELECT logloss(-0.25, 0);
-- just above 1: the message shows every digit that makes it so
SELECT logloss(1.0000001, 1);
-- the support functions outside an aggregate, and states that are not ours
SELECT din_auc_trans('', 0.5, true);
SELECT din_gauc_trans('', 1, 0.5, true);
SELECT din_metrics_combine('', '');
SELECT din_auc_final('');
SELECT din_auc_final('\x0102');
SELECT din_auc_final(decode(repeat('00', 48), 'hex'));
SELECT din_logloss_final('{1,2}');
SELECT din_logloss_final('{0,0,0}');
