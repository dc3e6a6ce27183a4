# Crash and restart (issue 9): a backend killed with SIGKILL in the middle of replacing a large
# model, and the server stopped with immediate shutdown, come back with the model tables
# consistent: exactly the old model or exactly the new one, never a mix, and scoring works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_node);

my $node = din_node('crash', $ENV{DIN_TAP_PORT_CRASH} // 5623);
# the test framework turns this off; a production server reinitializes after a crash
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
my $dir = PostgreSQL::Test::Utils::tempdir;

# A base model whose item table has `rows` rows of the embedding value `v`: 64 MB at 8M rows,
# four 16 MB chunks in din_tensors, so an import takes a while and a kill lands inside it.
sub model_file
{
	my ($path, $rows, $v) = @_;
	my $config = qq({"format": 1, "architecture": "base", "max_len": 4, )
	  . qq("fields": [{"name": "item", "rows": $rows, "dim": 2, "oov": "zero"}], )
	  . qq("target": ["item"], "behaviour": ["item"], "tower": {"inputs": ["history_mean", "target"], )
	  . qq("layers": [{"units": 2, "activation": {"type": "tanh"}}], "head": {"type": "sigmoid", "bias": true}}});
	(my $quoted = $config) =~ s/(["\\])/\\$1/g;
	my @t = ([ 'fields.item.weight', [ $rows, 2 ] ], [ 'tower.0.weight', [ 2, 4 ] ],
		[ 'tower.0.bias', [2] ], [ 'head.weight', [ 1, 2 ] ], [ 'head.bias', [1] ]);
	my ($at, @entries) = (0);
	for my $t (@t)
	{
		my $n = 1;
		$n *= $_ for @{ $t->[1] };
		push @entries, sprintf('"%s":{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}',
			$t->[0], join(',', @{ $t->[1] }), $at, $at + 4 * $n);
		$at += 4 * $n;
	}
	my $header = qq({"__metadata__":{"din.config":"$quoted"},) . join(',', @entries) . '}';
	$header .= ' ' x ((8 - length($header) % 8) % 8);
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh pack('Q<', length($header)), $header, pack('f<', $v) x ($at / 4);
	close($fh);
	chmod 0644, $path;
}
model_file("$dir/old.safetensors", 1000, 0.25);
model_file("$dir/new.safetensors", 8_000_000, 0.5);

$node->safe_psql('postgres', qq{
	CREATE EXTENSION din;
	SELECT din_import_file('m', '$dir/old.safetensors');
	SELECT din_import_file('probe', '$dir/new.safetensors');
});
my $export = q{SELECT md5(din_export('%s'))};
my $old = $node->safe_psql('postgres', sprintf($export, 'm'));
my $new = $node->safe_psql('postgres', sprintf($export, 'probe'));
$node->safe_psql('postgres', q{SELECT din_drop('probe')});
isnt($old, $new, 'the two versions export differently');
my $score = q{SELECT round(din_score('{1,2,3}', 4, 'm')::numeric, 6)};
my $old_score = $node->safe_psql('postgres', $score);

# The state of model m: which file it exports, its version, and whether its rows agree.
sub state_of_m
{
	my $md5 = $node->safe_psql('postgres', sprintf($export, 'm'));
	my $rows = $node->safe_psql('postgres', q{
		SELECT (SELECT version FROM din_models WHERE name = 'm') || '|' ||
		       (SELECT count(*) FROM din_tensors WHERE model = 'm') || '|' ||
		       (SELECT count(DISTINCT ord) FROM din_tensors WHERE model = 'm')});
	return ($md5 eq $old ? 'old' : $md5 eq $new ? 'new' : "a mix ($md5)", $rows);
}

# Starts replacing m with the large file in a session; returns when the import is running.
sub start_replace
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/,
		"\\echo started\nSELECT din_import_file('m', '$dir/new.safetensors', replace => true);\n");
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $pid AND query LIKE '%din_import_file%' AND state = 'active'")
	  or die 'the import did not start';
	select(undef, undef, undef, 0.3);
	return ($s, $pid);
}

# 1: SIGKILL of the importing backend: the postmaster reinitializes, the import is gone
my ($s, $pid) = start_replace();
kill 'KILL', $pid;
eval { $s->quit };
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back';
my ($which, $rows) = state_of_m();
is($which, 'old', 'after SIGKILL mid-import the old model is intact');
is($rows, '1|5|5', 'version 1, one chunk per tensor');
is($node->safe_psql('postgres', $score), $old_score, 'and scores as before');

# 2: immediate shutdown mid-import, then restart (crash recovery)
($s, $pid) = start_replace();
$node->stop('immediate');
eval { $s->quit };
$node->start;
($which, $rows) = state_of_m();
is($which, 'old', 'after immediate shutdown mid-import the old model is intact');
is($node->safe_psql('postgres', $score), $old_score, 'and scores as before');

# 3: a committed replace survives immediate shutdown whole
$node->safe_psql('postgres', qq{SELECT din_import_file('m', '$dir/new.safetensors', replace => true)});
$node->stop('immediate');
$node->start;
($which, $rows) = state_of_m();
is($which, 'new', 'a committed replace survives immediate shutdown');
is($rows, '2|8|5', 'version 2, the embedding in four chunks');
my $new_score = $node->safe_psql('postgres', $score);
isnt($new_score, $old_score, 'the new model scores');
is($node->safe_psql('postgres', 'SELECT din_load(\'m\') > 0'), 't', 'and loads into the cache');

$node->stop;
done_testing();
