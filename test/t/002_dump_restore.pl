# Models survive pg_dump / pg_restore: din's tables are extension configuration tables, so a
# custom-format dump carries their rows and the generation sequence, and the restored
# database scores exactly as the original. Two restore targets: an empty database (the dump
# creates the extension) and one where CREATE EXTENSION din already ran.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_fixture din_node din_install_helpers);

my $fixture = din_fixture();
note "fixture: $fixture";
my $node = din_node('dump', $ENV{DIN_TAP_PORT_DUMP} // 5525);
my $tmp  = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
din_install_helpers($node, 'src');
$node->safe_psql(
	'src', qq{
	SELECT din_import_file('m', '$fixture', comment => 'first');
	SELECT din_import_file('m', '$fixture', replace => true, comment => 'second');
	SELECT din_import_file('other', '$fixture');
	-- 50 users x 20 candidates, scored per row, stored for comparison.
	CREATE TABLE cases AS
	  SELECT u, t.history[1:1 + u % 8] AS history, c.ad, c.k, t.context, t.dense
	    FROM generate_series(0, 49) u, din_test_case('m', 1000) t,
	         LATERAL unnest(t.candidates[1 + u * 20:20 + u * 20]) WITH ORDINALITY c(ad, k);
});

# Every value a restore must reproduce, as text (float8 prints shortest-exact in PG 12+).
my $state_sql = q{
	SELECT string_agg(format('%s v%s g%s %s %s %s', name, version, generation, architecture,
	                         md5(config::text), comment), E'\n' ORDER BY name)
	  FROM din_models;
	SELECT model, count(*), md5(string_agg(name || ord || dtype || shape::text || chunk
	                                      || md5(data), ',' ORDER BY name, chunk))
	  FROM din_tensors GROUP BY model ORDER BY model;
	SELECT model, count(*), md5(string_agg(item_id || attributes::text, ',' ORDER BY item_id))
	  FROM din_items GROUP BY model ORDER BY model;
	SELECT model, count(*), md5(string_agg(field || raw_id || ':' || row_index, ','
	                                      ORDER BY field, raw_id))
	  FROM din_vocab GROUP BY model ORDER BY model;
	SELECT name, md5(din_export(name)) FROM din_models ORDER BY name;
};
my $scores_sql = q{
	SELECT string_agg(format('%s:%s:%s', u, ad,
	                         din_score(history, ad, model => 'm', context => context,
	                                   dense => dense)), ',' ORDER BY u, k)
	  FROM cases;
};
my $batch_sql = q{
	SELECT md5(string_agg(s::text, ',' ORDER BY u))
	  FROM (SELECT u, din_score(history, array_agg(ad ORDER BY k), model => 'm',
	                            context => context, dense => dense) AS s
	          FROM cases GROUP BY u, history, context, dense) q;
};

my $state  = $node->safe_psql('src', $state_sql);
my $scores = $node->safe_psql('src', $scores_sql);
my $batch  = $node->safe_psql('src', $batch_sql);
like($state, qr/^m v2 g\d+ /m, 'source: m replaced once, version 2');
like($state, qr/^other v1 g\d+ /m, 'source: other at version 1');
is( $node->safe_psql(
		'src', q{
		SELECT count(*) FILTER (WHERE p > 0 AND p < 1)
		  FROM (SELECT din_score(history, ad, model => 'm', context => context,
		                         dense => dense) AS p FROM cases) q}),
	'1000', 'source: 1000 scores, all in (0, 1)');

my $dump = "$tmp/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc');

# 1: into an empty database; the dump's CREATE EXTENSION comes before the table data.
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into an empty database');

# 2: into a database that already has the (empty) extension.
$node->safe_psql('postgres', 'CREATE DATABASE preinstalled');
$node->safe_psql('preinstalled', 'CREATE EXTENSION din');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('preinstalled'), $dump ],
	'pg_restore into a database with CREATE EXTENSION din done');

for my $db (qw(restored preinstalled))
{
	is($node->safe_psql($db, $state_sql),  $state,  "$db: same models, tensors, items, vocabularies, exports");
	is($node->safe_psql($db, $scores_sql), $scores, "$db: identical per-row scores");
	is($node->safe_psql($db, $batch_sql),  $batch,  "$db: identical batch scores");

	# The sequence came along: a new import never reuses a generation, which would let a
	# cached copy of another model version pass for current.
	$node->safe_psql($db, "SELECT din_import_file('fresh', '$fixture')");
	is( $node->safe_psql(
			$db,
			q{SELECT generation > (SELECT max(generation) FROM din_models WHERE name <> 'fresh')
			    FROM din_models WHERE name = 'fresh'}),
		't',
		"$db: a new import gets a generation above every restored one");
}

$node->stop;
done_testing();
