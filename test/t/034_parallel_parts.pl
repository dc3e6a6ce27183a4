# Parallel auc/gauc parts handed over in the query's shared memory: with din preloaded, parts
# of 65,536 rows or more travel as signed references (the leader says so at DEBUG1) and the
# results equal the serial plan's; without preload there is no key, parts travel as rows, and
# the results are the same.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_node);

my $table = q{
	CREATE TABLE clicks AS
	SELECT (i::bigint * 7919) % 50021 AS user_id, ((i::bigint * 2654435761) % 1000003) / 1000003.0 AS score,
	       ((i::bigint * 40503) % 65537) < 65537 * (0.15 + 0.5 * ((i::bigint * 2654435761) % 1000003) / 1000003.0) AS clicked
	FROM generate_series(1, 600000) i;
	ALTER TABLE clicks SET (parallel_workers = 2);
	ANALYZE clicks;
};
my $metrics = 'SELECT auc(score, clicked), gauc(user_id, score, clicked), '
  . 'gauc_clicks(user_id, score, clicked) FROM clicks';
my $parallel = 'SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; '
  . 'SET max_parallel_workers_per_gather = 2; SET client_min_messages = debug1;';
my $part_line = qr/DEBUG:  din: combining a part of \d+ rows left in shared memory/;

# one node with din preloaded, one without
my $preloaded = din_node('parts_preload', $ENV{DIN_TAP_PORT_PARTS} // 5627);
my $plain = PostgreSQL::Test::Cluster->new('parts_plain', port => $ENV{DIN_TAP_PORT_PARTS_PLAIN} // 5628);
$plain->init;
$plain->append_conf('postgresql.conf', "fsync = off\n");
$plain->start;

my %serial;
for my $node ($preloaded, $plain)
{
	my $name = $node->name;
	$node->safe_psql('postgres', "CREATE EXTENSION din; $table");
	$serial{$name} = $node->safe_psql('postgres', "SET max_parallel_workers_per_gather = 0; $metrics");
	my ($ret, $out, $err) = $node->psql('postgres', "$parallel $metrics");
	is($ret, 0, "$name: the parallel plan runs");
	is($out, $serial{$name}, "$name: and equals the serial plan to the bit");
	my @parts = ($err =~ /$part_line/g);
	if ($name eq 'parts_preload')
	{
		# three parts of about 200,000 rows for auc and three for gauc, whose state gauc_clicks
		# shares: at least two of each, however the rows fall between the processes
		note(scalar(@parts) . " parts through shared memory");
		cmp_ok(scalar(@parts), '>=', 4, "$name: parts came through shared memory");
	}
	else
	{
		is(scalar(@parts), 0, "$name: without preload, parts come as rows");
	}
}
is($serial{parts_preload}, $serial{parts_plain}, 'both nodes agree');

# a query cancelled while workers hold parts in shared memory, then the same query again
my ($ret, $out, $err) = $preloaded->psql('postgres',
	"$parallel SET statement_timeout = '10ms'; $metrics");
like($err, qr/canceling statement due to statement timeout|^$/m, 'a cancelled query errors cleanly');
is($preloaded->safe_psql('postgres', "SET max_parallel_workers_per_gather = 2; $metrics"),
	$serial{parts_preload}, 'and the next one is exact');

$preloaded->stop;
$plain->stop;
done_testing();
