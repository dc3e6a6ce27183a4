# din-train's unit tests (test/train/run.sh): vocabularies and n_j, the mini-batch aware L2
# against a hand computation, Dice in train and eval modes, DIEN's auxiliary loss (no database).
use strict;
use warnings;
use IPC::Run;
use Test::More;
use DinTest qw(din_srcdir);
use DinConvert qw(din_python);

my $src    = din_srcdir();
my $python = din_python();
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'bash', "$src/test/train/run.sh" ], '>', \$stdout, '2>', \$stderr,
	init => sub { $ENV{DIN_PYTHON} = $python });
note($stdout);
ok($ok, 'din-train unit tests pass') or diag("$stdout\n$stderr");
like($stdout, qr/^\d+ passed, 0 failed$/m, 'and report their count');
done_testing();
