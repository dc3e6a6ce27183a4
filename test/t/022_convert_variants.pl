# Every option din-convert supports, on small random models (test/convert/variants.py): the
# libraries' state_dict layouts, `pred` from their forward passes written out in numpy
# (test/convert/libref.py), converted, imported and scored in SQL within 1e-5 absolute.
# Runs without the peer fixtures.
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
my ($stdout, $stderr) = ('', '');
IPC::Run::run([ $python, "$src/test/convert/variants.py", "$tmp/fixtures" ],
	'>', \$stdout, '2>', \$stderr, init => sub { $ENV{PYTHONDONTWRITEBYTECODE} = 1 })
  or BAIL_OUT("variants.py failed: $stderr");

my $node = din_node('convert_variants', $ENV{DIN_TAP_PORT_CONVERT_VARIANTS});
$node->safe_psql('postgres', 'CREATE EXTENSION din');
my $spec_of = sub { my ($library, $name) = @_; "$tmp/fixtures/$library/$name.spec.json" };
for my $library ('deepctr-torch', 'torch-rechub')
{
	check_library($node, $python, "$tmp/fixtures/$library", $tmp, $spec_of, 1e-5);
}
$node->stop;
done_testing();
