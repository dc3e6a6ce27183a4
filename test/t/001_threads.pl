# A backend that scored thousands of candidates is still single-threaded and has the serial
# OpenBLAS mapped: PostgreSQL backends must never start threads (signals, elog and memory
# contexts are not thread-safe), and the pthread OpenBLAS would start a pool on first use.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_fixture din_node din_install_helpers);

my $fixture = din_fixture();
note "fixture: $fixture";
my $node = din_node('threads', $ENV{DIN_TAP_PORT_THREADS} // 5524);
din_install_helpers($node, 'postgres');
$node->safe_psql('postgres', "SELECT din_import_file('m', '$fixture')");

my $session = $node->background_psql('postgres');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
like($pid, qr/^\d+$/, 'backend pid');

# Both entry points: one call with 10000 candidates, and 10000 calls with one each.
my $batch = $session->query_safe(
	q{WITH q AS MATERIALIZED (
	    SELECT din_score(t.history, t.candidates, model => 'm', context => t.context,
	                     dense => t.dense) AS s
	      FROM din_test_case('m', 10000) t)
	  SELECT cardinality(s), (SELECT min(x) > 0 AND max(x) < 1 FROM unnest(s) x) FROM q});
is($batch, "10000|t", '10000 candidates in one call, every score in (0, 1)');

my $rows = $session->query_safe(
	q{SELECT count(*), min(p) > 0 AND max(p) < 1
	    FROM din_test_case('m', 10000) t, unnest(t.candidates) c,
	         LATERAL din_score(t.history, c, model => 'm',
	                           context => t.context, dense => t.dense) p});
is($rows, "10000|t", '10000 one-candidate calls, every score in (0, 1)');

my $explained = $session->query_safe(
	q{SELECT count(*) > 0 FROM din_test_case('m', 1) t,
	         din_explain(t.history, t.candidates[1], model => 'm',
	                     context => t.context, dense => t.dense)});
is($explained, 't', 'din_explain returns rows in the same backend');

# Read from the test's side while the backend is alive and idle in the session.
opendir(my $tasks, "/proc/$pid/task") or die "cannot list /proc/$pid/task: $!";
my @threads = grep { /^\d+$/ } readdir($tasks);
closedir($tasks);
is(scalar(@threads), 1, 'the backend has exactly one thread after scoring');

my $maps = slurp_file("/proc/$pid/maps");
like($maps, qr{openblas-serial/libopenblas}, 'the backend mapped the serial OpenBLAS');
unlike($maps, qr{openblas-(pthread|openmp)/}, 'no threaded OpenBLAS is mapped');

$session->quit;
$node->stop;
done_testing();
