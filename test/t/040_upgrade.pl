# Releases (issue 19): ALTER EXTENSION din UPDATE from every released version leaves exactly
# the catalog a fresh install of the current version creates, and keeps the stored models;
# DROP EXTENSION din refuses to drop stored models unless din.allow_drop_models is on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use DinTest qw(din_srcdir din_node);

my $tiny = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node = din_node('upgrade', $ENV{DIN_TAP_PORT_UPGRADE} // 5625);
my ($current) = slurp_file(din_srcdir() . '/din.control') =~ /^default_version = '([^']+)'/m;
my $score = q{SELECT round(din_score('{100,101,102}', 103, 't', '{1}', '{0.5}')::numeric, 6)};

# the PGXN metadata names the version din.control installs
my $meta = decode_json(slurp_file(din_srcdir() . '/META.json'));
is($meta->{version} . ' ' . $meta->{provides}{din}{version}, "$current $current",
	'META.json and din.control name the same version');
ok(-f din_srcdir() . '/sql/din--0.1.0.sql', 'the released 0.1.0 install script is kept');

$node->safe_psql('postgres', 'CREATE DATABASE fresh; CREATE DATABASE updated;');
$node->safe_psql('fresh', 'CREATE EXTENSION din');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'din'}),
	$current, "CREATE EXTENSION din installs $current");

# a model stored by 0.1.0, scored by it with today's library
$node->safe_psql('updated', qq{
	CREATE EXTENSION din VERSION '0.1.0';
	SELECT din_import_file('t', '$tiny');
});
is($node->safe_psql('updated', $score), '0.618092', '0.1.0 scores the fixture');
# 0.1.0's row triggers have no transition tables: the library touches every model, as 0.1.0 did
my $gen = $node->safe_psql('updated', q{SELECT generation FROM din_models WHERE name = 't'});
$node->safe_psql('updated', 'UPDATE din_tensors SET ord = ord WHERE false');
isnt($node->safe_psql('updated', q{SELECT generation FROM din_models WHERE name = 't'}),
	$gen, 'a 0.1.0 row trigger still gives models a new generation');

my ($ret, $out, $err) = $node->psql('updated', "ALTER EXTENSION din UPDATE TO '$current'");
is($ret, 0, "ALTER EXTENSION din UPDATE TO '$current'") or diag($err);
is($node->safe_psql('updated', q{SELECT extversion FROM pg_extension WHERE extname = 'din'}),
	$current, "the extension is at $current");
is($node->safe_psql('updated', "$score; SELECT count(*) FROM din_models"), "0.618092\n1",
	'the model is kept and scores the same');
# 0.2.0's row triggers name the models they touched
$node->safe_psql('updated', q{SELECT din_import('u', din_export('t'))});
$gen = $node->safe_psql('updated', q{SELECT generation FROM din_models WHERE name = 't'});
$node->safe_psql('updated', q{UPDATE din_tensors SET ord = ord WHERE model = 'u'});
is($node->safe_psql('updated', q{SELECT generation FROM din_models WHERE name = 't'}),
	$gen, 'after the update a change of one model leaves the others alone');
$node->safe_psql('updated', q{SELECT din_drop('u')});

# Everything the extension owns, printed so that two databases compare line by line: its
# members, and for each what its definition, defaults, constraints, indexes, triggers,
# comments and privileges are. OIDs never appear; names are printed qualified.
my $catalog = <<'SQL';
SET search_path = pg_catalog;
WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'din'),
members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid),
procs AS (SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
SELECT line FROM (
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
    UNION ALL
    SELECT 'config ' || extconfig::regclass[]::text || ' ' || extcondition::text FROM ext
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' acl ' || coalesce(p.proacl::text, '-')
           || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-') || E'\n'
           || CASE WHEN p.prokind = 'a' THEN
                  (SELECT format('aggregate %s %s final %s combine %s state %s init %s',
                                 a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn,
                                 a.aggcombinefn, a.aggtranstype::regtype, a.agginitval)
                     FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                  || ' parallel ' || p.proparallel::text
              ELSE pg_get_functiondef(p.oid) END
      FROM procs p
    UNION ALL
    SELECT format('relation %s kind %s options %s acl %s comment %s', c.oid::regclass, c.relkind,
                  c.reloptions, c.relacl, obj_description(c.oid, 'pg_class'))
      FROM rels c
    UNION ALL
    SELECT format('column %s.%s %s notnull %s storage %s default %s acl %s comment %s',
                  c.oid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  a.attstorage, pg_get_expr(ad.adbin, ad.adrelid), a.attacl,
                  col_description(c.oid, a.attnum))
      FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s.%s %s', c.oid::regclass, k.conname, pg_get_constraintdef(k.oid))
      FROM rels c JOIN pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM rels c JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT format('trigger %s enabled %s: %s', t.tgname, t.tgenabled, pg_get_triggerdef(t.oid))
      FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('sequence %s %s %s %s %s %s %s %s', s.seqrelid::regclass, s.seqtypid::regtype,
                  s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
      FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    SELECT format('event trigger %s on %s tags %s function %s enabled %s comment %s', e.evtname,
                  e.evtevent, e.evttags, e.evtfoid::regprocedure, e.evtenabled,
                  obj_description(e.oid, 'pg_event_trigger'))
      FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass
                                            AND m.objid = e.oid
) listing(line)
ORDER BY line COLLATE "C";
SQL

my $fresh   = $node->safe_psql('fresh',   $catalog);
my $updated = $node->safe_psql('updated', $catalog);
# what differs, line by line, rather than two listings of several hundred lines
my %in_fresh   = map { $_ => 1 } split /\n/, $fresh;
my %in_updated = map { $_ => 1 } split /\n/, $updated;
my @only_fresh   = grep { !$in_updated{$_} } sort keys %in_fresh;
my @only_updated = grep { !$in_fresh{$_} } sort keys %in_updated;
ok(@only_fresh == 0 && @only_updated == 0 && $fresh eq $updated,
	"an updated catalog equals a fresh $current install")
  or diag(join("\n", (map { "only in a fresh install: $_" } @only_fresh),
		(map { "only after the update: $_" } @only_updated)));
cmp_ok(scalar(keys %in_fresh), '>', 100, 'the listing covers the extension');

# everything din creates says what it is for
is($node->safe_psql('fresh', q{
	SELECT string_agg(pg_describe_object(d.classid, d.objid, 0), ', ' ORDER BY 1)
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'din'
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	   AND d.classid IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_event_trigger'::regclass)
	   AND obj_description(d.objid, d.classid::regclass::text) IS NULL}),
	'', 'every function, table, sequence and event trigger has a comment');

# DROP EXTENSION din keeps stored models unless told otherwise
($ret, $out, $err) = $node->psql('updated', 'DROP EXTENSION din CASCADE',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/2BP01.*extension din still stores 1 model/s, 'DROP EXTENSION din refuses with a model stored');
like($err, qr/din\.allow_drop_models/, '... and says how to drop it anyway');
is($node->safe_psql('updated', "$score"), '0.618092', 'the model is still there');
$node->safe_psql('updated', 'CREATE EXTENSION citext; DROP EXTENSION citext; CREATE TABLE x (); DROP TABLE x;');
pass('other extensions and other DDL are not held');
($ret, $out, $err) = $node->psql('updated',
	'BEGIN; SET LOCAL din.allow_drop_models = on; DROP EXTENSION din; COMMIT;');
is($ret, 0, 'with din.allow_drop_models on, DROP EXTENSION din drops the models') or diag($err);
is($node->safe_psql('updated', q{SELECT count(*) FROM pg_extension WHERE extname = 'din';
	SELECT count(*) FROM pg_class WHERE relname = 'din_models'}), "0\n0", 'din and its tables are gone');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname = 'din_admin'}), '1',
	'the role din_admin stays (roles belong to the cluster)');
($ret, $out, $err) = $node->psql('fresh', 'DROP EXTENSION din');
is($ret, 0, 'DROP EXTENSION din without stored models just works') or diag($err);
# a session that never loaded din (not preloaded): the event trigger loads it
$node->safe_psql('fresh', qq{CREATE EXTENSION din; SELECT din_import_file('t', '$tiny')});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
($ret, $out, $err) = $node->psql('fresh', 'DROP EXTENSION din');
like($err, qr/still stores 1 model/, 'without preloading, DROP EXTENSION din still refuses');
{
	# as README tells a pg_restore --clean to: a setting made before din is loaded counts
	local $ENV{PGOPTIONS} = '-c din.allow_drop_models=on';
	($ret, $out, $err) = $node->psql('fresh', 'DROP EXTENSION din');
}
is($ret, 0, '... and PGOPTIONS=-c din.allow_drop_models=on lets it drop them') or diag($err);

$node->stop;
done_testing();
