# Models trained by DeepCTR-Torch and torch-rechub (issue 10): tools/din-convert turns each
# peer fixture's state_dict into a din model file, din imports it, and din_score gives, on
# every test row, the probability the library computed, within 1e-5 absolute. The fixtures
# live beside the clone (../shared/fixtures, or DIN_SHARED/fixtures); without them this test
# skips. Each fixture model needs its SPEC in test/convert/specs/<library>/<model>.json.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);
use DinConvert qw(din_python check_library);

my $src      = din_srcdir();
my $shared   = $ENV{DIN_SHARED} // "$src/../shared";
my @manifests = sort glob("$shared/fixtures/*/manifest.json");
plan skip_all => "no peer fixtures in $shared/fixtures (set DIN_SHARED to the directory "
  . 'holding fixtures/<library>/manifest.json)'
  unless @manifests;

my $python = din_python();
my $tmp    = PostgreSQL::Test::Utils::tempdir('convert');
my $node   = din_node('convert_fixtures', $ENV{DIN_TAP_PORT_CONVERT});
$node->safe_psql('postgres', 'CREATE EXTENSION din');
my $spec_of = sub { my ($library, $name) = @_; "$src/test/convert/specs/$library/$name.json" };
for my $manifest (@manifests)
{
	check_library($node, $python, dirname($manifest), $tmp, $spec_of, 1e-5);
}
$node->stop;
done_testing();
