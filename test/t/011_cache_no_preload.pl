# Without shared_preload_libraries, din caches models per connection and says so once per
# backend in the server log (not to the client: a stock server's installcheck stays quiet);
# everything else works the same.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir);

my $tiny = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node = PostgreSQL::Test::Cluster->new('no_preload', port => $ENV{DIN_TAP_PORT_NO_PRELOAD} // 5572);
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\n");
$node->start;
$node->safe_psql('postgres', qq{CREATE EXTENSION din; SELECT din_import_file('t', '$tiny')});

my $score = q{SELECT round(din_score('{100,101,102}', 103, 't', '{1}', '{0.5}')::numeric, 6);};
my $line = qr/LOG:  din is not in shared_preload_libraries; models are cached per connection/;
my $log_offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', "$score $score SELECT din_load('t') > 0;");
is($ret, 0, 'scoring works without preload');
is($out, "0.618092\n0.618092\nt", 'with the reference scores');
is($err, '', 'nothing reaches the client');
my @lines = (slurp_file($node->logfile, $log_offset) =~ /$line/g);
is(scalar(@lines), 1, 'one LOG line per backend');

$log_offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "$score SELECT model, version, backends, loads FROM din_cache();");
is($out, "0.618092\nt|1|1|1", 'din_cache lists the connection\'s own copy');
ok($node->log_contains($line, $log_offset), 'a new backend logs its line');

# a committed replace reaches another connection's cache at its next statement
my $s = $node->background_psql('postgres');
$s->query_safe('SET client_min_messages = warning');
is($s->query_safe($score), '0.618092', 'session scores');
$node->safe_psql('postgres', q{
	UPDATE din_tensors t SET data = (SELECT string_agg(set_byte(substr(t.data, 4 * i + 1, 4), 3,
	                                     get_byte(t.data, 4 * i + 3) # 128), ''::bytea ORDER BY i)
	                                 FROM generate_series(0, length(t.data) / 4 - 1) i)
	 WHERE model = 't' AND ord = 0 AND dtype = 'F32'});
isnt($s->query_safe($score), '0.618092', 'direct weight changes are seen at the next statement');
$s->quit;
$node->stop;
done_testing();
