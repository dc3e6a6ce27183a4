-- Forged auc/gauc and logloss states (issue 14): any user can hand any bytea or float8[] to
-- the support functions, through an aggregate of their own or by a direct call. A state whose
-- header disagrees with its bytes is rejected with 22P03 (SQLSTATE echoed after each error);
-- none may crash the backend.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- the INITCOND of the report: a bare header claiming 2^32 positives and room for 2^33
CREATE AGGREGATE pg_temp.evil_auc(float8, boolean) (SFUNC = din_auc_trans, STYPE = bytea,
    INITCOND = '\x444e444d0100000000000000000000000100000000000000000000000000000002000000', FINALFUNC = din_auc_final);
SELECT pg_temp.evil_auc(0.5, true);
\echo :LAST_ERROR_SQLSTATE
-- a gauc header claiming 2^40 positives over room for one record
CREATE AGGREGATE pg_temp.evil_gauc(bigint, float8, boolean) (SFUNC = din_gauc_trans,
    STYPE = bytea, INITCOND = '\x444e444d020000000000000000000000000100000000000000000000010000000000000000000000000000000000000000000000',
    FINALFUNC = din_gauc_final);
SELECT pg_temp.evil_gauc(1, 0.5, true);
\echo :LAST_ERROR_SQLSTATE
-- din_metrics_combine appending a real state to a forged left state of room 2^40 and no bytes
CREATE AGGREGATE pg_temp.evil_combine(bytea) (SFUNC = din_metrics_combine, STYPE = bytea,
    INITCOND = '\x444e444d0100000000000000000000000000000000000000000000000000000000010000', FINALFUNC = din_auc_final);
SELECT pg_temp.evil_combine(s) FROM (VALUES ('\x444e444d0100000000000000010000000000000001000000000000000200000000000000000000000000e0bf000000000000d0bf'::bytea)) v(s);
\echo :LAST_ERROR_SQLSTATE
-- the same right state through an honest left state: combined in place, then final
CREATE AGGREGATE pg_temp.good_combine(bytea) (SFUNC = din_metrics_combine, STYPE = bytea,
    INITCOND = '', FINALFUNC = din_auc_final);
SELECT pg_temp.good_combine(s) FROM (VALUES ('\x444e444d0100000000000000010000000000000001000000000000000200000000000000000000000000e0bf000000000000d0bf'::bytea), ('\x444e444d0100000000000000010000000000000001000000000000000200000000000000000000000000e0bf000000000000d0bf')) v(s);
-- a forged right state
SELECT pg_temp.good_combine(s) FROM (VALUES ('\x444e444d020000000000000000000000000100000000000000000000010000000000000000000000000000000000000000000000'::bytea)) v(s);
\echo :LAST_ERROR_SQLSTATE
-- references to a part in a parallel query's shared memory (flags 5): only din's own leader
-- follows one, and only when the server's signature on it is right
SELECT din_auc_final('\x444e444d01000000050000000100000000000000010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.good_combine(s) FROM (VALUES ('\x444e444d01000000050000000100000000000000010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'::bytea)) v(s);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.good_combine(s) FROM (VALUES ('\x444e444d010000000500000001000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'::bytea)) v(s);
\echo :LAST_ERROR_SQLSTATE
-- final functions called directly: the real state, then forged ones
SELECT din_auc_final('\x444e444d0100000000000000010000000000000001000000000000000200000000000000000000000000e0bf000000000000d0bf');
SELECT din_auc_final('\x444e444d0100000000000000000000000100000000000000000000000000000002000000');
\echo :LAST_ERROR_SQLSTATE
SELECT din_gauc_clicks_final('\x444e444d020000000000000000000000000100000000000000000000010000000000000000000000000000000000000000000000');
\echo :LAST_ERROR_SQLSTATE
-- a valid header whose capacity is larger, or smaller, than its records
SELECT din_auc_final('\x444e444d0100000000000000010000000000000000000000000000000400000000000000000000000000e0bf000000000000d0bf');
\echo :LAST_ERROR_SQLSTATE
SELECT din_auc_final('\x444e444d0100000000000000010000000000000000000000000000000100000000000000000000000000e0bf000000000000d0bf');
\echo :LAST_ERROR_SQLSTATE
CREATE AGGREGATE pg_temp.evil_room(float8, boolean) (SFUNC = din_auc_trans, STYPE = bytea,
    INITCOND = '\x444e444d0100000000000000010000000000000000000000000000000400000000000000000000000000e0bf000000000000d0bf');
SELECT pg_temp.evil_room(0.5, false);
\echo :LAST_ERROR_SQLSTATE
-- an unknown kind, a flag no version sets, half a gauc record
SELECT din_auc_final('\x444e444d03000000000000000000000000000000000000000000000001000000000000000000000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT din_auc_final('\x444e444d01000000020000000000000000000000000000000000000001000000000000000000000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT din_gauc_final('\x444e444d02000000000000000000000000000000000000000000000001000000000000000000000000000000');
\echo :LAST_ERROR_SQLSTATE
-- flag 1 says the rows are sorted (parallel workers sort their part); a state that claims it
-- falsely (descending rows here) gives the AUC of its rows all the same, directly, and combined
-- many times over, past 32,768 rows, where a claimed-sorted part is merged into the rows held
SELECT din_auc_final('\x444e444d0100000001000000020000000000000002000000000000000400000000000000cdccccccccccecbf9a9999999999c9bf000000000000e0bf9a9999999999b9bf') AS claimed,
       din_auc_final('\x444e444d0100000000000000020000000000000002000000000000000400000000000000cdccccccccccecbf9a9999999999c9bf000000000000e0bf9a9999999999b9bf') AS unclaimed;
-- parts of 2,500 rows claiming sorted ascending keys they do not have; past 32,768 rows the
-- combined state merges such parts into the rows it holds, and must check each one
-- (keys below 251 in the top byte: many ties, and little-endian words that hex spells easily)
CREATE FUNCTION pg_temp.part(g int, flags int) RETURNS bytea LANGUAGE sql AS $$
    SELECT decode('444e444d01000000' || lpad(to_hex(flags), 2, '0') || '000000'
                  || 'c409000000000000c4090000000000008813000000000000'
                  || string_agg('00000000000000' || lpad(to_hex((i * 7919 + g * 13) % 251), 2, '0'), '' ORDER BY i)
                  || string_agg('00000000000000' || lpad(to_hex((i * 4099 + g * 31) % 251), 2, '0'), '' ORDER BY i),
                  'hex')
    FROM generate_series(1, 2500) i $$;
CREATE AGGREGATE pg_temp.runs(bytea) (SFUNC = din_metrics_combine, STYPE = bytea, INITCOND = '',
    FINALFUNC = din_auc_final);
CREATE TEMP TABLE parts AS SELECT g, pg_temp.part(g, 1) AS claimed, pg_temp.part(g, 0) AS unclaimed
FROM generate_series(1, 30) g;
SELECT round(pg_temp.runs(claimed)::numeric, 12) AS claimed,
       pg_temp.runs(claimed) = pg_temp.runs(unclaimed) AS equal
FROM parts;
-- a valid gauc state where an auc state belongs
SELECT din_auc_final('\x444e444d02000000000000000100000000000000000000000000000001000000000000000100000000000080000000000000e0bf');
\echo :LAST_ERROR_SQLSTATE
CREATE AGGREGATE pg_temp.mixed_auc(float8, boolean) (SFUNC = din_auc_trans, STYPE = bytea,
    INITCOND = '\x444e444d02000000000000000100000000000000000000000000000001000000000000000100000000000080000000000000e0bf');
SELECT pg_temp.mixed_auc(0.5, true);
\echo :LAST_ERROR_SQLSTATE
CREATE AGGREGATE pg_temp.mixed_combine(bytea) (SFUNC = din_metrics_combine, STYPE = bytea,
    INITCOND = '\x444e444d02000000000000000100000000000000000000000000000001000000000000000100000000000080000000000000e0bf');
SELECT pg_temp.mixed_combine(s) FROM (VALUES ('\x444e444d0100000000000000010000000000000001000000000000000200000000000000000000000000e0bf000000000000d0bf'::bytea)) v(s);
\echo :LAST_ERROR_SQLSTATE
-- a gauc state of 40,000 rows, as a parallel worker sends it: sorted and packed (flags 3), each
-- record a user key difference of 1 to 10 bytes and a score key, so about 9 bytes a row
CREATE AGGREGATE pg_temp.gauc_state(bigint, float8, boolean) (SFUNC = din_gauc_trans,
    STYPE = bytea, INITCOND = '');
CREATE TEMP TABLE packed_rows AS
SELECT i % 1000 AS u, ((i * 7919) % 10007) / 10007.0 AS score, (i * 31) % 3 = 0 AS clicked
FROM generate_series(1, 40000) i;
CREATE TEMP TABLE packed AS SELECT pg_temp.gauc_state(u, score, clicked) AS s FROM packed_rows;
SELECT get_byte(s, 8) AS flags, length(s) < 10 * 40000 AS under_10_bytes_a_row,
       din_gauc_final(s) = (SELECT gauc(u, score, clicked) FROM packed_rows) AS equal
FROM packed;
-- combined three times over (merged into the rows held, unpacked as read), and onto a plain state
CREATE AGGREGATE pg_temp.gauc_parts(bytea) (SFUNC = din_metrics_combine, STYPE = bytea,
    INITCOND = '', FINALFUNC = din_gauc_final);
SELECT pg_temp.gauc_parts(s) = (SELECT gauc(u, score, clicked) FROM packed_rows, generate_series(1, 3))
       AS thrice
FROM packed, generate_series(1, 3);
SELECT pg_temp.gauc_parts(s ORDER BY o)
       = (SELECT gauc(u, score, clicked) FROM (SELECT * FROM packed_rows UNION ALL SELECT 5, 0.5, true) r)
       AS onto_plain
FROM (SELECT 1 AS o, pg_temp.gauc_state(5, 0.5, true) AS s UNION ALL SELECT 2, s FROM packed) p;
-- spoiled streams: cut short, one byte too many, a user key difference past 64 bits
SELECT din_gauc_final(substring(s from 1 for length(s) - 1)) FROM packed;
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.gauc_parts(s || '\x00'::bytea) FROM packed;
\echo :LAST_ERROR_SQLSTATE
SELECT din_gauc_final(set_byte(s, 44, 255)) FROM packed;
\echo :LAST_ERROR_SQLSTATE
-- logloss states: any lower bound will do, not another length, NULLs or dimensions
SELECT din_logloss_final('[0:2]={3,1.5,0}');
SELECT din_logloss_final('{1,NULL,3}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_logloss_final('{1,2,3,4}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_logloss_final('{{1,2,3}}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_logloss_combine('{1,2,3}', '{1}');
\echo :LAST_ERROR_SQLSTATE
CREATE AGGREGATE pg_temp.evil_logloss(float8, boolean) (SFUNC = din_logloss_trans,
    STYPE = float8[], INITCOND = '{1}', FINALFUNC = din_logloss_final);
SELECT pg_temp.evil_logloss(0.5, true);
\echo :LAST_ERROR_SQLSTATE
