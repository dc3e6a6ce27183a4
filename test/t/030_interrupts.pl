# Interrupts and memory (issue 9): a long din_rank over millions of candidates and a long
# metric aggregate stop at statement_timeout and at pg_cancel_backend (CHECK_FOR_INTERRUPTS
# between candidate chunks and in the aggregates' sort), the backend survives; 10^6 din_score
# calls in one statement leave the backend's memory flat.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DinTest qw(din_srcdir din_node);

my $tiny = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node = din_node('interrupts', $ENV{DIN_TAP_PORT_INTERRUPTS} // 5622);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION din;
	SELECT din_import_file('t', '$tiny');
	CREATE TABLE cands AS SELECT array_agg(100 + i % 4)::bigint[] AS ids FROM generate_series(1, 6000000) i;
	CREATE TABLE scored AS SELECT (i % 1000)::bigint AS u, random() AS s, i % 3 = 0 AS l
	  FROM generate_series(1, 3000000) i;
	VACUUM ANALYZE scored;
});
my $rank = q{SELECT count(*) FROM cands, din_rank('{100,101}', ids, 5, 't', '{1}', '{0.5}')};
my $agg = q{SELECT gauc(u, s, l), auc(s, l) FROM scored};

my $t0 = time;
is($node->safe_psql('postgres', $rank), '5', 'din_rank over 6 * 10^6 candidates completes');
my $full = time - $t0;

# Runs $sql under statement_timeout $timeout; returns (stderr, seconds taken).
sub timed_out
{
	my ($sql, $timeout) = @_;
	my $t0 = time;
	my ($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '$timeout'; $sql");
	return ($err, time - $t0);
}

# Starts $sql in a session of its own, cancels it with pg_cancel_backend from another once it
# runs, and checks the session survives; returns (stderr, seconds from the cancel to the answer).
sub cancelled
{
	my ($name, $sql) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/, "\\echo started\n$sql;\n");
	$node->poll_query_until('postgres',
		"SELECT state = 'active' AND query LIKE 'SELECT%' FROM pg_stat_activity WHERE pid = $pid")
	  or die "the statement did not start";
	my $t0 = time;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	is($s->query('SELECT 42'), '42', "$name: the session survives a cancel");
	my $took = time - $t0;
	my $err = $s->{stderr};
	$s->quit;
	return ($err, $took);
}

for my $case ([ 'din_rank', $rank ], [ 'aggregate', $agg ])
{
	my ($name, $sql) = @$case;
	my ($err, $took) = timed_out($sql, '300ms');
	like($err, qr/canceling statement due to statement timeout/, "$name stops at statement_timeout");
	cmp_ok($took, '<', 0.3 + $full / 2, "$name stops well before it would finish");
	($err, $took) = cancelled($name, $sql);
	like($err, qr/canceling statement due to user request/, "$name is cancelled");
	cmp_ok($took, '<', 0.3 + $full / 2, "$name: the cancel is prompt");
}

# Interrupts by work, not by count (issue 14): with max_len 10,000 one candidate is 10,000
# attention pairs, so a cancel must not wait for a chunk of thousands of candidates. The tiny
# DIN model's max_len is raised by hand (none of its weights depends on it).
my $long_history = 'ARRAY(SELECT 100 + i % 4 FROM generate_series(1, 10000) i)::bigint[]';
my $many = 'ARRAY(SELECT 100 + i % 4 FROM generate_series(1, 40000) i)::bigint[]';
$node->safe_psql('postgres',
	q{UPDATE din_models SET config = jsonb_set(config, '{max_len}', '10000') WHERE name = 't'});
for my $case (
	[ 'din_rank', "SELECT count(*) FROM din_rank($long_history, $many, 5, 't', '{1}', '{0.5}')" ],
	[ 'array din_score', "SELECT cardinality(din_score($long_history, $many, 't', '{1}', '{0.5}'))" ])
{
	my ($name, $sql) = @$case;
	my ($err, $took) = timed_out($sql, '1s');
	like($err, qr/canceling statement due to statement timeout/,
		"max_len 10000, $name of 40000 candidates stops at statement_timeout");
	cmp_ok($took, '<', 1.5, "max_len 10000, $name: within 0.5 s of the timeout ($took s)");
	($err, $took) = cancelled("max_len 10000, $name", $sql);
	like($err, qr/canceling statement due to user request/, "max_len 10000, $name is cancelled");
	cmp_ok($took, '<', 0.5, "max_len 10000, $name: the cancel takes effect within 0.5 s ($took s)");
}
$node->safe_psql('postgres',
	q{UPDATE din_models SET config = jsonb_set(config, '{max_len}', '3') WHERE name = 't'});

# memory: 10^6 calls in one statement; the backend's peak RSS grows by at most a few MB
my $s = $node->background_psql('postgres');
my $pid = $s->query_safe('SELECT pg_backend_pid()');
my $score = q{SELECT count(din_score(ARRAY[100 + i % 4, 101], 100 + (i % 3), 't', ARRAY[i % 4], ARRAY[0.5]))
	FROM generate_series(1, %d) i};
sub rss_kb
{
	my $status = slurp_file("/proc/$pid/status");
	return $status =~ /VmHWM:\s+(\d+) kB/ ? $1 : die "no VmHWM";
}
$s->query_safe(sprintf($score, 100000));    # warm: the model cached, the plan built
my $before = rss_kb();
is($s->query_safe(sprintf($score, 1000000)), '1000000', '10^6 din_score calls in one statement');
my $after = rss_kb();
cmp_ok($after - $before, '<', 8192, "peak RSS stays flat ($before kB -> $after kB)");
my $ctx = q{SELECT sum(total_bytes) FROM pg_backend_memory_contexts};
my $c1 = $s->query_safe($ctx);
$s->query_safe(sprintf($score, 1000000));
my $c2 = $s->query_safe($ctx);
cmp_ok($c2 - $c1, '<', 1024 * 1024, "memory contexts do not grow across statements ($c1 -> $c2)");
$s->quit;

$node->stop;
done_testing();
