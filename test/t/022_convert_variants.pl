# Every option din-convert supports, on models trained by DeepCTR-Torch and torch-rechub
# themselves (test/fixtures/peer, made by test/convert/make_peer_fixtures.py): each state_dict
# converted, imported and scored in SQL, every test row within 1e-5 of the library's own `pred`.
# A case the manifest marks as an expected failure (what the format cannot express yet) is
# reported with its reason and does not fail. Runs without ../shared.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);
use DinConvert qw(din_python check_library);

my $src    = din_srcdir();
my $python = din_python();
my $tmp    = PostgreSQL::Test::Utils::tempdir('variants');
my $peer   = "$src/test/fixtures/peer";

my $node = din_node('convert_variants', $ENV{DIN_TAP_PORT_CONVERT_VARIANTS});
$node->safe_psql('postgres', 'CREATE EXTENSION din');
my $spec_of = sub { my ($library, $name) = @_; "$peer/$library/$name.spec.json" };
for my $library ('deepctr-torch', 'torch-rechub')
{
	check_library($node, $python, "$peer/$library", $tmp, $spec_of, 1e-5);
}
$node->stop;
done_testing();
