# One copy of each model version in shared memory (issue 4): many connections and parallel
# workers map the same block; a replace in an open transaction stays invisible to others until
# commit; din.cache_size evicts unused versions and refuses when everything is in use; a
# restart reloads from the tables.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DinTest qw(din_fixture din_srcdir din_node din_install_helpers);

my $fixture = din_fixture();
my $tiny    = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node    = din_node('shared_cache', $ENV{DIN_TAP_PORT_SHARED_CACHE} // 5571);
din_install_helpers($node, 'postgres');
$node->safe_psql('postgres', qq{
	SELECT din_import_file('m', '$fixture');
	CREATE TABLE cases AS SELECT * FROM din_test_case('m', 200);
});
my $bytes = $node->safe_psql('postgres', q{SELECT din_load('m')});
note "packed model: $bytes bytes";

my $score_sql = q{SELECT md5(din_score(history, candidates, model => 'm', context => context,
                                       dense => dense)::text) FROM cases};

# The DSM segments a backend maps (/dev/shm/PostgreSQL.<handle>): the DSA area of the cache
# and the control segment; their total is the cluster's dynamic shared memory.
sub shm_segments
{
	my ($pid) = @_;
	my %seg;
	open(my $fh, '<', "/proc/$pid/maps") or die "cannot read /proc/$pid/maps: $!";
	while (<$fh>)
	{
		$seg{$1} = 1 if m{(/dev/shm/PostgreSQL\.\d+)};
	}
	close($fh);
	return %seg;
}

sub total_size
{
	my (%seg) = @_;
	my $total = 0;
	$total += (-s $_) // 0 for keys %seg;
	return $total;
}

sub rss_anon_kb
{
	my ($pid) = @_;
	my $status = slurp_file("/proc/$pid/status");
	return $status =~ /RssAnon:\s+(\d+)/ ? $1 : 0;
}

# ---- 1. twenty connections, one copy ----------------------------------------------------
my (@sessions, @pids, %all_segments);
my $expected = $node->safe_psql('postgres', $score_sql);
my $first_total;
for my $i (1 .. 20)
{
	my $s = $node->background_psql('postgres');
	my $t0 = time;
	is($s->query_safe($score_sql), $expected, "connection $i scores like the reference session")
	  if $i == 1 || $i == 20;
	$s->query_safe($score_sql) if $i != 1 && $i != 20;
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	my %seg = shm_segments($pid);
	$all_segments{$_} = 1 for keys %seg;
	$first_total = total_size(%seg) if $i == 1;
	push @sessions, $s;
	push @pids,     $pid;
}
my $cache = $node->safe_psql('postgres',
	q{SELECT count(*), sum(bytes), sum(backends), sum(loads) FROM din_cache() WHERE model = 'm'});
is($cache, "1|$bytes|20|1", 'one cached version of m, one load, mapped by the 20 backends');
my $total = total_size(%all_segments);
note "dynamic shared memory mapped by the 20 backends: $total bytes (after one: $first_total)";
is($total, $first_total, 'the shared memory mapped did not grow from 1 to 20 connections');
cmp_ok($total, '<', 16 * 1024 * 1024 + $bytes, 'and holds the model once plus DSA overhead');
my @rss = map { rss_anon_kb($_) } @pids;
note 'private anonymous memory per backend (kB): ' . join(' ', @rss);

# ---- parallel workers map the same block ------------------------------------------------
my $per_row = q{SELECT md5(string_agg(p::text, ',' ORDER BY k))
                  FROM (SELECT k, din_score(c.history, c.candidates[k], model => 'm',
                                            context => c.context, dense => c.dense) AS p
                          FROM cases c, generate_series(1, 200) k) q};
$node->safe_psql('postgres', q{CREATE TABLE many AS SELECT k FROM generate_series(1, 20000) k});
my $parallel_sql = q{SELECT md5(string_agg(p::text, ',' ORDER BY k)) FROM (
	SELECT k, din_score(c.history, c.candidates[1 + k % 200], model => 'm', context => c.context,
	                    dense => c.dense) AS p FROM many, cases c) q};
my $serial = $node->safe_psql('postgres', "SET max_parallel_workers_per_gather = 0; $parallel_sql");
my $forced = $node->safe_psql('postgres', qq{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; SET force_parallel_mode = on;
	$parallel_sql});
is($forced, $serial, 'a parallel plan scores exactly like the serial one');
like($node->safe_psql('postgres', qq{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; EXPLAIN (COSTS OFF) $parallel_sql}),
	qr/Gather/, 'the plan is parallel');
is($node->safe_psql('postgres', q{SELECT count(*), sum(loads) FROM din_cache() WHERE model = 'm'}),
	'1|1', 'parallel workers loaded nothing');

$_->quit for @sessions;

# ---- 2. a replace in an open transaction is invisible to other sessions until commit -----
$node->safe_psql('postgres', qq{
	SELECT din_import_file('tx', '$tiny');
	SELECT din_import_file('tx2', '$tiny');
	-- tx2: every float of the first weight tensor negated (sign bit of each little-endian f32)
	UPDATE din_tensors t SET data = (SELECT string_agg(set_byte(substr(t.data, 4 * i + 1, 4), 3,
	                                     get_byte(t.data, 4 * i + 3) # 128), ''::bytea ORDER BY i)
	                                 FROM generate_series(0, length(t.data) / 4 - 1) i)
	 WHERE model = 'tx2' AND ord = 0 AND dtype = 'F32';
});
my $tx_sql = q{SELECT din_score('{100,101,102}', 103, 'tx', '{1}', '{0.5}')};
my $old = $node->safe_psql('postgres', $tx_sql);
my $new = $node->safe_psql('postgres', q{SELECT din_score('{100,101,102}', 103, 'tx2', '{1}', '{0.5}')});
isnt($old, $new, 'the two versions score differently');

my $sa = $node->background_psql('postgres');
my $sb = $node->background_psql('postgres');
is($sb->query_safe($tx_sql), $old, 'B scores the old version');
$sa->query_safe(q{BEGIN; SELECT din_import('tx', din_export('tx2'), replace => true)});
is($sa->query_safe($tx_sql), $new, 'A sees its own uncommitted version');
is($sb->query_safe($tx_sql), $old, 'B still scores the old version while A is open');
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_cache() WHERE model = 'tx'}), '1',
	'the uncommitted version is not in shared memory');
$sa->query_safe('COMMIT');
is($sb->query_safe($tx_sql), $new, 'B scores the new version at its next statement after commit');
is($node->safe_psql('postgres', q{SELECT string_agg(version::text, ',') FROM din_cache() WHERE model = 'tx'}),
	'2', 'the old version was freed: only version 2 is cached');

# a statement keeps the version it started with: B's long query spans A's commit
$sb->query_safe(q{BEGIN ISOLATION LEVEL REPEATABLE READ});
is($sb->query_safe($tx_sql), $new, 'B in a repeatable read transaction');
$sa->query_safe(qq{SELECT din_import('tx', pg_read_binary_file('$tiny'), replace => true)});
is($sb->query_safe($tx_sql), $new, 'B keeps its snapshot\'s version after another commit');
$sb->query_safe('COMMIT');
is($sb->query_safe($tx_sql), $old, 'and sees the committed one in its next transaction');
$sa->quit;
$sb->quit;

# ---- 3. din.cache_size: evict the least recently used unused version, or refuse ----------
my $tiny_bytes = $node->safe_psql('postgres', q{SELECT din_load('tx')});
$node->safe_psql('postgres', qq{
	SELECT din_import_file('e' || i, '$tiny') FROM generate_series(1, 4) i;
	ALTER SYSTEM SET din.cache_size = '8kB'; SELECT pg_reload_conf();});
sleep 1;
for my $i (1 .. 3)
{
	$node->safe_psql('postgres', "SELECT din_load('e$i')");
}
is($node->safe_psql('postgres', q{SELECT string_agg(model, ',' ORDER BY model) FROM din_cache()}),
	'e1,e2,e3', 'three tiny models fill 8kB; the larger ones were evicted');
$node->safe_psql('postgres', q{SELECT din_load('e4')});
is($node->safe_psql('postgres', q{SELECT string_agg(model, ',' ORDER BY model) FROM din_cache()}),
	'e2,e3,e4', 'loading a fourth evicts the least recently used (e1)');
my ($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN; SELECT din_load('e2'); SELECT din_load('e3'); SELECT din_load('e4');
	SELECT din_load('e1'); COMMIT;}, on_error_stop => 1);
isnt($ret, 0, 'loading with every cached version in use fails');
like($err, qr/no room in din\.cache_size to load model "e1"/, 'with a clear message');
like($err, qr/HINT:  Raise din\.cache_size/, 'and a hint');
($ret, $out, $err) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SELECT din_load('m')});
like($err, qr/54000: model "m" does not fit in din\.cache_size/, 'a model larger than the cap: 54000');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET din.cache_size; SELECT pg_reload_conf();});

# ---- 5. a restart keeps working: the cache is rebuilt from the tables ---------------------
$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_cache()}), '0', 'empty cache after restart');
is($node->safe_psql('postgres', $score_sql), $expected, 'the same scores after restart');
is($node->safe_psql('postgres', q{SELECT bytes, loads FROM din_cache() WHERE model = 'm'}),
	"$bytes|1", 'reloaded once, same size');

# ---- numbers: cold load vs warm hit, time to first score in a new connection --------------
my $one = q{SELECT din_score(history, candidates[1], model => 'm', context => context, dense => dense) FROM cases LIMIT 1};
$node->safe_psql('postgres', q{SELECT din_import(name, din_export(name), replace => true) FROM (VALUES ('m')) v(name)});
my $t0 = time;
$node->safe_psql('postgres', $one);
my $cold = time - $t0;
my @warm;
for (1 .. 5)
{
	$t0 = time;
	$node->safe_psql('postgres', $one);
	push @warm, time - $t0;
}
my $warm = (sort { $a <=> $b } @warm)[2];
note sprintf('first score in a new connection: cold %.1f ms, warm %.1f ms (ratio %.1f)',
	$cold * 1000, $warm * 1000, $cold / $warm);

$node->stop;
done_testing();
