# tools/din-train end to end (issue 20): small seeded runs on test/train/synthetic.sql in a
# throwaway node. Each architecture (base, DIN, DIEN, DSIN, BST, and BST with time positions
# from a config file) trains, reports per-epoch loss and din's AUC/GAUC, and the stored model's
# din_score equals the trainer's eval-mode prediction within 1e-5 relative on every validation
# row (checked here in SQL against the predictions the trainer wrote).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);
use DinConvert qw(din_python);

my $src    = din_srcdir();
my $python = din_python();
BAIL_OUT("$python cannot import torch, tqdm and psycopg2 (Debian packages python3-torch, "
	  . "python3-tqdm, python3-psycopg2)")
  if system($python, '-c', 'import torch, tqdm, psycopg2') != 0;
my $tmp = PostgreSQL::Test::Utils::tempdir('train');

my $node = din_node('train', $ENV{DIN_TAP_PORT_TRAIN} // 5650);
$node->safe_psql('postgres', 'CREATE EXTENSION din');
$node->safe_psql('postgres', slurp_file("$src/test/train/synthetic.sql"));
my $dsn = sprintf('host=%s port=%d dbname=postgres', $node->host, $node->port);
my $valid_where = 'user_id % 7 = 3';
my @common = ($python, "$src/tools/din-train", '--dsn', $dsn, '--quiet', '--threads', '1',
	'--train', "SELECT * FROM impressions WHERE NOT ($valid_where)",
	'--valid', "SELECT * FROM impressions WHERE $valid_where ORDER BY id",
	'--items', 'SELECT item_id, cate FROM items', '--context-names', 'user_group',
	'--dim', '4', '--attention', '8', '--tower', '16,8', '--epochs', '2', '--seed', '7');

sub train
{
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ @common, @_ ], '>', \$stdout, '2>', \$stderr);
	return ($ok, $stderr);
}

# din_score of the stored model against the trainer's predictions, row by row.
sub max_relative_difference
{
	my ($model, $csv) = @_;
	return $node->safe_psql('postgres', qq{
		CREATE TEMP TABLE pred (row bigint, prediction float8);
		COPY pred FROM '$csv' WITH (FORMAT csv, HEADER);
		SELECT count(*), count(p.row),
		       max(abs(din_score(v.history, v.ad_id, '$model', v.context, v.dense,
		                         v.history_time, v.at) - p.prediction) / p.prediction)
		  FROM (SELECT row_number() OVER (ORDER BY id) AS row, *
		          FROM impressions WHERE $valid_where) v
		  LEFT JOIN pred p USING (row);});
}

my %runs = (
	base     => [ '--arch', 'base', '--l2', '1e-4', '--dropout', '0.2' ],
	din_dice => [ '--arch', 'din', '--mba', '0.01' ],
	din_prelu =>
	  [ '--arch', 'din', '--attention-activation', 'prelu', '--tower-activation', 'dice' ],
	dien     => [ '--arch', 'dien', '--aux-loss', '1.0', '--mba', '0.01' ],
	dsin     => [ '--arch', 'dsin', '--mba', '0.01' ],
	bst      => [ '--arch', 'bst',  '--l2', '1e-4' ],
	bst_time => [ '--config', "$tmp/bst_time.json" ],);
# BST with time-gap buckets concatenated (the paper's positions) and the mean read-out.
append_to_file("$tmp/bst_time.json", q({"architecture": "bst", "transformer": {"heads": 2,
	"ffn": {"units": 16, "activation": {"type": "relu"}}, "readout": "mean",
	"positions": [{"type": "time_gap", "boundaries": [600, 3600, 86400], "combine": "concat",
	               "dim": 4}]}}));
my $n_valid = $node->safe_psql('postgres',
	"SELECT count(*) FROM impressions WHERE $valid_where");
for my $model (sort keys %runs)
{
	my ($ok, $err) =
	  train('--model', $model, '--predictions', "$tmp/$model.csv", @{ $runs{$model} });
	ok($ok, "$model: trains and stores") or diag($err);
	note($err);
	like($err,
		qr/epoch 2: train loss \d\.\d+, validation AUC 0\.\d+ GAUC 0\.\d+ \(din_score in SQL, $n_valid rows\)/,
		"$model: reports each epoch's loss and din's AUC");
	like($err, qr/stored model $model version 1/, "$model: stored with din_import");
	my ($rows, $matched, $diff) = split /\|/, max_relative_difference($model, "$tmp/$model.csv");
	is("$rows|$matched", "$n_valid|$n_valid", "$model: a prediction for every validation row");
	cmp_ok($diff, '<=', 1e-5,
		"$model: din_score equals the trainer's prediction (max relative difference $diff)");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_models WHERE name LIKE 'din_train_%'}),
	'0', 'the per-epoch models were rolled back');

# -o, GAUC without user_id, and the refusals
my ($ok, $err) = train('--arch', 'din', '-o', "$tmp/din.safetensors", '--epochs', '1',
	'--valid', "SELECT id, history, ad_id, label, context, dense FROM impressions WHERE $valid_where");
ok($ok, '-o writes a file') or diag($err);
like($err, qr/GAUC n\/a /, 'no GAUC when the rows have no user_id');
$node->safe_psql('postgres', "SELECT din_import_file('from_file', '$tmp/din.safetensors')");
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_models WHERE name = 'from_file'}),
	'1', 'and the file imports');

($ok, $err) = train('--arch', 'din', '--model', 'din_dice');
ok(!$ok && $err =~ /model "din_dice" already exists/, 'an existing model needs --replace');
($ok, $err) = train('--arch', 'din', '--model', 'strict', '--tolerance', '0');
ok(!$ok && $err =~ /nothing stored/, 'a difference above --tolerance stores nothing')
  or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM din_models WHERE name = 'strict'}),
	'0', 'and no model is left');
($ok, $err) = train('--arch', 'dsin', '--model', 'x', '--train',
	"SELECT history, ad_id, label FROM impressions WHERE NOT ($valid_where)");
like($err, qr/architecture dsin divides histories into sessions by time; the training query needs the column history_time/,
	'dsin without history_time: a clear error');
# a key the trainer's module ignores, din refuses
append_to_file("$tmp/bad.json", q({"attention": {"layers": [{"units": 4}], "scaling": true}}));
($ok, $err) = train('--model', 'x', '--config', "$tmp/bad.json");
like($err, qr/din refuses the model's config: .*scaling/, 'din judges a config file before training')
  or diag($err);
unlike($err, qr/epoch 1/, 'and nothing is trained');
($ok, $err) = train('--arch', 'din', '--model', 'x', '--train', 'SELECT history FROM impressions');
like($err, qr/the query lacks the columns ad_id, label/, 'missing columns are named');

$node->stop;
done_testing();
