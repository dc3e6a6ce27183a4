# din-convert --import (issue 19): a converted model goes straight into a database from the
# client, through psycopg2, and is the same model -o plus din_import_file gives; a second
# import needs --replace; without psycopg2 the message names the Debian package.
use strict;
use warnings;
use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);
use DinConvert qw(din_python);

my $src    = din_srcdir();
my $python = din_python();
BAIL_OUT("$python cannot import psycopg2 (Debian package python3-psycopg2)")
  if system($python, '-c', 'import psycopg2') != 0;
my $tmp  = PostgreSQL::Test::Utils::tempdir('import');
my $peer = "$src/test/fixtures/peer/deepctr-torch";
my @convert = ($python, "$src/tools/din-convert", 'deepctr-torch',
	'--weights', "$peer/din_dice.weights.npz", '--spec', "$peer/din_dice.spec.json",
	'--items', "$peer/cate_of_item.npy");

my $node = din_node('convert_import', $ENV{DIN_TAP_PORT_CONVERT_IMPORT} // 5626);
$node->safe_psql('postgres', 'CREATE EXTENSION din');
my $dsn = sprintf('host=%s port=%d dbname=postgres', $node->host, $node->port);

sub convert
{
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ @convert, @_ ], '>', \$stdout, '2>', \$stderr);
	return ($ok, $stderr);
}

my ($ok, $err) = convert('-o', "$tmp/dice.safetensors");
ok($ok, 'converted to a file') or diag($err);
$node->safe_psql('postgres', "SELECT din_import_file('from_file', '$tmp/dice.safetensors')");

($ok, $err) = convert('--import', $dsn, '--model', 'from_client');
ok($ok, '--import imports') or diag($err);
like($err, qr/wrote model from_client version 1: din,/, 'and says which version');
is($node->safe_psql('postgres',
		q{SELECT din_export('from_client') = din_export('from_file'),
		         din_score('{3,5,8}', 9, 'from_client', '{1}', '{0.5}')
		       = din_score('{3,5,8}', 9, 'from_file', '{1}', '{0.5}')}),
	't|t', 'the same model as -o and din_import_file');

($ok, $err) = convert('--import', $dsn, '--model', 'from_client');
ok(!$ok, 'a second import without --replace fails');
like($err, qr/import failed: model "from_client" already exists/, 'with din\'s error');
($ok, $err) = convert('--import', $dsn, '--model', 'from_client', '--replace');
like($err, qr/version 2/, '--replace makes version 2');

($ok, $err) = convert('-o', "$tmp/x.safetensors", '--import', $dsn, '--model', 'x');
ok(!$ok && $err =~ /one of them/, '-o and --import exclude each other');

# psycopg2 missing: a module of that name that fails to import stands in for it
make_path("$tmp/nopg");
open(my $fh, '>', "$tmp/nopg/psycopg2.py") or die;
print $fh "raise ImportError('no psycopg2 here')\n";
close($fh);
{
	local $ENV{PYTHONPATH} = "$tmp/nopg";
	($ok, $err) = convert('--import', $dsn, '--model', 'nodriver');
}
ok(!$ok, 'without psycopg2 --import fails');
like($err, qr/needs psycopg2 \(Debian package python3-psycopg2\)/, 'naming the package');
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_models WHERE name = 'nodriver'}),
	'0', 'and imports nothing');

$node->stop;
done_testing();
