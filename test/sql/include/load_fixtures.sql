\set ECHO none
-- load_fixtures.sql - imports fixture models and loads their rows, for the regress tests that
-- score fixtures (test/sql/din_fixtures.sql, din_rank, din_dien, din_bst, din_dsin). Include with
--   \set variants 'name1 name2 ...'   models to import, in this order
--   \set timed 0|1                     1: the CSVs carry history_us and at_us columns
--   \set explain 'pattern'             LIKE pattern of the variants with an .explain.csv
--   \i :abs_srcdir/sql/include/load_fixtures.sql
-- It fills the temp tables fixture (one row per CSV row; times as timestamptz, NULL when the
-- CSV has none) and explain_fixture. Reads are server-side: the tests run as superuser.
\set dir :abs_srcdir '/fixtures/'
CREATE TEMP TABLE fixture (variant text, id int, history bigint[], ad_id bigint,
                           context bigint[], dense float8[], history_time timestamptz[],
                           at timestamptz, expected float8);
CREATE TEMP TABLE explain_fixture (variant text, id int, pos int, weight float8);
CREATE TEMP TABLE fixture_load (id int, history bigint[], ad_id bigint, context bigint[],
                                dense float8[], history_us bigint[], at_us bigint,
                                expected float8);
CREATE TEMP TABLE explain_load (id int, pos int, weight float8);
-- CSV times are timestamptz microseconds since 2000-01-01 UTC
CREATE FUNCTION pg_temp.us(bigint) RETURNS timestamptz IMMUTABLE
    AS $$ SELECT timestamptz '2000-01-01 00:00:00+00' + $1 * interval '1 microsecond' $$
    LANGUAGE sql;
SELECT set_config('din_test.dir', :'dir', false) IS NOT NULL AS dir_set,
       set_config('din_test.variants', :'variants', false) IS NOT NULL AS variants_set,
       set_config('din_test.timed', :'timed', false) IS NOT NULL AS timed_set,
       set_config('din_test.explain', :'explain', false) IS NOT NULL AS explain_set \gset
DO $$
DECLARE
    v text;
    dir text := current_setting('din_test.dir');
    cols text := CASE current_setting('din_test.timed')
                 WHEN '1' THEN 'id, history, ad_id, context, dense, history_us, at_us, expected'
                 ELSE 'id, history, ad_id, context, dense, expected' END;
BEGIN
    FOR v IN SELECT name FROM unnest(string_to_array(current_setting('din_test.variants'), ' '))
                 WITH ORDINALITY AS x(name, k) ORDER BY k LOOP
        PERFORM din_import(v, pg_read_binary_file(dir || v || '.safetensors'));
        EXECUTE format('COPY fixture_load (%s) FROM %L WITH (FORMAT csv, HEADER)', cols,
                       dir || v || '.csv');
        INSERT INTO fixture
        SELECT v, id, history, ad_id, context, dense,
               CASE WHEN history_us IS NOT NULL
                    THEN ARRAY(SELECT pg_temp.us(u) FROM unnest(history_us) WITH ORDINALITY
                                   AS x(u, k) ORDER BY k) END,
               pg_temp.us(at_us), expected
        FROM fixture_load;
        TRUNCATE fixture_load;
        IF v LIKE current_setting('din_test.explain') THEN
            EXECUTE format('COPY explain_load FROM %L WITH (FORMAT csv, HEADER)',
                           dir || v || '.explain.csv');
            INSERT INTO explain_fixture SELECT v, * FROM explain_load;
            TRUNCATE explain_load;
        END IF;
    END LOOP;
END
$$;
\set ECHO all
