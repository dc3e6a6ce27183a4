# Scale-out with Citus (issue 18): a coordinator and two workers on loopback ports. Models
# reach every node in one distributed transaction (din_distribute_models makes the model tables
# reference tables), a failure on one node changes no node, a node added later gets every
# model, and each node's cache sees a replaced model at its next statement; din_score (both
# forms) and the metric aggregates run on the workers and equal the same query over a local
# copy, and so does din_rank called LATERAL. See docs/SCALE.md.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_install_helpers);

# test/run-all.sh (make test) builds Citus from ../shared/citus first when that folder exists
my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed in $pkglibdir; make test builds it from ../shared/citus"
  . ' (or DIN_SHARED/citus) when that folder exists'
  unless -f "$pkglibdir/citus.so";

my $fixtures = din_srcdir() . '/test/fixtures';
my $model_a  = "$fixtures/base_mean.safetensors";    # the same inputs as din_repo
my $model_b  = "$fixtures/din_repo.safetensors";

# A node with Citus before din, reachable by the others on 127.0.0.1 (a free port).
sub citus_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus,din'
listen_addresses = '127.0.0.1'
fsync = off
max_prepared_transactions = 20
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	return $node;
}

my $coord   = citus_node('coordinator');
my @workers = (citus_node('worker1'), citus_node('worker2'));
$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_coordinator_host('127.0.0.1', %d)},
	$coord->port));
$coord->safe_psql('postgres', sprintf(q{SELECT citus_add_node('127.0.0.1', %d)}, $_->port))
  for @workers;
din_install_helpers($coord, 'postgres');
$coord->safe_psql('postgres', 'SELECT din_distribute_models()');

# ---- models on every node -----------------------------------------------------------------
my $catalog = q{SELECT string_agg(format('%s v%s g%s %s', name, version, generation,
	(SELECT md5(string_agg(md5(data), '' ORDER BY name, chunk)) FROM din_tensors t
	  WHERE t.model = m.name)), ', ' ORDER BY name) FROM din_models m};
sub same_everywhere
{
	my ($what, @nodes) = @_;
	my $want = $coord->safe_psql('postgres', $catalog);
	is($_->safe_psql('postgres', $catalog), $want, "$what: " . $_->name) for @nodes;
	return $want;
}
$coord->safe_psql('postgres', "SELECT din_import_file('m', '$model_a')");
$coord->safe_psql('postgres', "SELECT din_import_file('other', '$model_b')");
like(same_everywhere('both imports reached', @workers), qr/^m v1 g\d+ \w+, other v1/,
	'the coordinator lists both models');

# impressions: 2000 rows over 50 users, distributed by user; imp_local is the same rows
$coord->safe_psql('postgres', q{
	CREATE TABLE imp AS
	SELECT g AS id, (g % 50)::bigint AS user_id, c.history, c.candidates[1 + g % 20] AS ad,
	       c.context, c.dense, (g % 7 = 0 OR g % 11 = 3) AS clicked
	FROM din_test_case('m', 20) c, generate_series(1, 2000) g;
	CREATE TABLE imp_local AS SELECT * FROM imp;
	SELECT create_distributed_table('imp', 'user_id');
	SELECT truncate_local_data_after_distributing_table('imp');
});

my $one   = q{din_score(history, ad, 'm', context, dense)};
my $array = q{din_score(history, ARRAY[ad, ad + 1], 'm', context, dense)};
sub scores
{
	my ($table) = @_;
	return $coord->safe_psql('postgres',
		"SELECT md5(string_agg(format('%s %s %s', id, $one, $array), ',' ORDER BY id)) FROM $table");
}
is(scores('imp'), scores('imp_local'), 'din_score (both forms) on the workers equals the local copy');
my $plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT id, $one, $array FROM imp");
like($plan, qr/Task Count: 32/, 'scoring is a multi-shard query');
like($plan, qr/Query: SELECT id, public\.din_score\(history, ad, 'm'.*public\.din_score\(history, ARRAY/,
	'both din_score forms are pushed down to the shards');

my $metrics = "SELECT auc($one, clicked), gauc(user_id, $one, clicked),
	gauc_clicks(user_id, $one, clicked), logloss($one, clicked),
	auc(id::float8, clicked), gauc(user_id, (id % 13)::float8, clicked)";
is($coord->safe_psql('postgres', "$metrics FROM imp"),
	$coord->safe_psql('postgres', "$metrics FROM imp_local"),
	'auc, gauc, gauc_clicks, logloss over the distributed table equal the local ones exactly');
$plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $metrics FROM imp");
like($plan, qr/worker_partial_agg\('public\.auc\(double precision,boolean\)'.*worker_partial_agg\('public\.gauc\(bigint,double precision,boolean\)'.*worker_partial_agg\('public\.gauc_clicks.*worker_partial_agg\('public\.logloss/s,
	'the workers aggregate partial states');
my $grouped = "SELECT user_id, auc($one, clicked), logloss($one, clicked) FROM %s GROUP BY user_id ORDER BY user_id";
is($coord->safe_psql('postgres', sprintf($grouped, 'imp')),
	$coord->safe_psql('postgres', sprintf($grouped, 'imp_local')),
	'grouped by the distribution column: whole aggregates on the workers, equal');

# ---- din_rank: a LATERAL call over every shard, and in a router query --------------------
my $rank = q{SELECT md5(string_agg(format('%s %s %s %s', i.id, r.ad_id, r.score, r.rank), ','
	ORDER BY i.id, r.rank)) FROM TABLE i, LATERAL din_rank(i.history, ARRAY[i.ad, i.ad + 1, i.ad + 2],
	2, 'm', i.context, i.dense) r};
for my $where ('', ' WHERE i.user_id = 7')
{
	(my $dist  = $rank . $where) =~ s/TABLE/imp/;
	(my $local = $rank . $where) =~ s/TABLE/imp_local/;
	is($coord->safe_psql('postgres', $dist), $coord->safe_psql('postgres', $local),
		"din_rank over the distributed table equals the local one$where");
}
$plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) SELECT i.id, r.* FROM imp i,
	LATERAL din_rank(i.history, ARRAY[i.ad], 1, 'm', i.context, i.dense) r");
like($plan, qr/Task Count: 32.*Query: SELECT .*LATERAL public\.din_rank\(/s,
	'din_rank is pushed down to every shard');

# ---- one transaction: a failure on one node changes no node ---------------------------------
my $before = same_everywhere('before the failing import', @workers);
my $shard = $coord->safe_psql('postgres',
	q{SELECT shard_name('din_tensors'::regclass, shardid) FROM pg_dist_shard
	  WHERE logicalrelid = 'din_tensors'::regclass});
# a local trigger on worker2's shard of din_tensors (Citus would propagate or refuse it)
$workers[1]->safe_psql('postgres', qq{
	SET citus.enable_ddl_propagation = off;
	SET citus.enable_manual_changes_to_shards = on;
	CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
	  BEGIN RAISE EXCEPTION 'worker2 refuses'; END \$\$;
	CREATE TRIGGER fail BEFORE INSERT ON $shard FOR EACH STATEMENT EXECUTE FUNCTION fail();
});
my ($ret, $out, $err) = $coord->psql('postgres', "SELECT din_import_file('new', '$model_a')");
like($err, qr/worker2 refuses/, 'a new import failing on worker2 fails');
($ret, $out, $err) = $coord->psql('postgres', "SELECT din_import_file('m', '$model_b', true)");
like($err, qr/worker2 refuses/, 'a replace failing on worker2 fails');
is(same_everywhere('after the failed imports', $coord, @workers), $before,
	'no node changed: no model "new", "m" still version 1');
$workers[1]->safe_psql('postgres', qq{SET citus.enable_ddl_propagation = off;
	SET citus.enable_manual_changes_to_shards = on; DROP TRIGGER fail ON $shard});
$coord->safe_psql('postgres', q{BEGIN; SELECT din_drop('other'); ROLLBACK});
is(same_everywhere('after a rolled back drop', @workers), $before, 'a rolled back drop changes nothing');
$coord->safe_psql('postgres', q{SELECT din_drop('other')});
is($_->safe_psql('postgres', q{SELECT string_agg(name, ',') FROM din_models}), 'm',
	'din_drop reached ' . $_->name)
  for @workers;

# ---- a replace while a distributed query runs; every cache sees it at its next statement ----
# Citus takes no snapshot across shards: each shard's task is a statement of its own on its
# worker, and din scores a statement with the version it started with. So a query running
# across a replace scores every shard with one version, the old one where its task started
# before the commit, and never mixes versions within a shard.
sub rows_from
{
	my ($from) = @_;
	return qq{SELECT id, format('%s %s', $one, $array) FROM $from ORDER BY id};
}
sub rows_of
{
	my ($text) = @_;
	return { map { split /\|/, $_, 2 } grep { /^\d+\|/ } split /\n/, $text };
}
my $old_rows = rows_of($coord->safe_psql('postgres', rows_from('imp')));
my %shard_of = map { split /\|/ } split /\n/, $coord->safe_psql('postgres',
	q{SELECT id, get_shard_id_for_distribution_column('imp', user_id) FROM imp_local});
my $old = scores('imp');
my $slow = $coord->background_psql('postgres');
# each row sleeps 20 ms: the query runs for a second or more over the shards
$slow->query_until(qr/started/,
	"\\echo started\n" . rows_from('(SELECT *, pg_sleep(0.02) FROM imp) i') . ";\n");
$_->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity
	WHERE state = 'active' AND query LIKE '%din_score%' AND pid <> pg_backend_pid()})
  for @workers;
$coord->safe_psql('postgres', "SELECT din_import_file('m', '$model_b', true)");
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()}), '1',
	'the replace committed while the distributed query was still running');
my $during = rows_of($slow->query('SELECT 1'));
$slow->quit;
my $new = scores('imp');
isnt($new, $old, 'the next statement scores the new version');
is($new, scores('imp_local'), 'on every worker: equal to the local copy scored with the new version');
my $new_rows = rows_of($coord->safe_psql('postgres', rows_from('imp')));
my (%versions, @wrong);
for my $id (sort { $a <=> $b } keys %$old_rows)
{
	my $got = $during->{$id} // '';
	my $v = $got eq $old_rows->{$id} ? 'old' : $got eq $new_rows->{$id} ? 'new' : undef;
	push @wrong, $id unless defined $v;
	$versions{ $shard_of{$id} }{$v // 'neither'} = 1;
}
is(scalar(@wrong), 0, 'the query across the replace scored every row with the old or the new version');
is(scalar(grep { keys %{ $versions{$_} } != 1 } keys %versions), 0,
	'each shard was scored with one version');
my $kept = grep { $versions{$_}{old} } keys %versions;
note("shards scored with the old version: $kept of " . scalar(keys %versions));
ok($kept > 0, 'the shards whose tasks had started kept the old version');
same_everywhere('the replace reached', @workers);
for my $w (@workers)
{
	like($w->safe_psql('postgres', q{SELECT string_agg(format('%s v%s', model, version), ',') FROM din_cache()}),
		qr/m v2/, 'the shared cache of ' . $w->name . ' holds version 2');
}

# ---- a node added later gets every model ----------------------------------------------------
my $late = citus_node('worker3');
$coord->safe_psql('postgres', sprintf(q{SELECT citus_add_node('127.0.0.1', %d)}, $late->port));
# the documented step: move shards there, which first copies the reference tables
$coord->safe_psql('postgres',
	q{SELECT rebalance_table_shards('imp', shard_transfer_mode => 'block_writes')});
is($late->safe_psql('postgres', q{SELECT count(*) > 0 FROM citus_shards
	WHERE table_name = 'imp'::regclass AND nodeport = } . $late->port), 't',
	'the new worker holds shards of imp');
same_everywhere('a node added after the imports has every model', $late);
is(scores('imp'), scores('imp_local'), 'scoring on three workers equals the local copy');
$coord->safe_psql('postgres', "SELECT din_import_file('m', '$model_a', true)");
same_everywhere('a replace after the node joined reached', @workers, $late);
is(scores('imp'), scores('imp_local'), 'and every worker scores the replaced model');

$_->stop for ($late, @workers, $coord);
done_testing();
