# The converter's unit tests (test/convert/run.sh): mapping by role, switches, the items side
# table, the container, and every refusal, on small state_dicts made in the tests.
use strict;
use warnings;
use IPC::Run;
use Test::More;
use DinTest qw(din_srcdir);
use DinConvert qw(din_python);

my $src    = din_srcdir();
my $python = din_python();
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'bash', "$src/test/convert/run.sh" ], '>', \$stdout, '2>', \$stderr,
	init => sub { $ENV{DIN_PYTHON} = $python });
note($stdout);
ok($ok, 'converter unit tests pass') or diag("$stdout\n$stderr");
like($stdout, qr/^\d+ passed, 0 failed$/m, 'and report their count');
done_testing();
