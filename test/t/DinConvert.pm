# DinConvert - what the converter's TAP tests share: run tools/din-convert on every model of a
# fixture directory laid out like ../shared/fixtures/<library>/ (manifest.json,
# NAME.weights.npz, NAME.test.npz, cate_of_item.npy), import the result, score every test row
# with din_score and compare with the library's `pred`.
package DinConvert;

use strict;
use warnings;
use File::Basename qw(basename dirname);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
use DinTest qw(din_srcdir);

our @EXPORT_OK = qw(din_python check_library);

# Debian's interpreter (python3-numpy); DIN_PYTHON overrides.
sub din_python
{
	my $python = $ENV{DIN_PYTHON} // (-x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3');
	BAIL_OUT("$python cannot import numpy (Debian package python3-numpy)")
	  if system($python, '-c', 'import numpy') != 0;
	return $python;
}

# check_library($node, $python, $dir, $tmp, $spec_of, $tolerance): $spec_of->($library, $name)
# gives the SPEC path. Returns { model => max absolute error }.
sub check_library
{
	my ($node, $python, $dir, $tmp, $spec_of, $tolerance) = @_;
	my $src     = din_srcdir();
	my $library = basename($dir);
	my $models  = decode_json(slurp_file("$dir/manifest.json"));
	my %max_error;
	for my $name (sort keys %$models)
	{
		my $model = "$library.$name";
		my $spec  = $spec_of->($library, $name);
		my $out   = "$tmp/$model.safetensors";
		my $csv   = "$tmp/$model.csv";
		if (!-f $spec)
		{
			fail("$model: no SPEC at $spec");
			next;
		}
		# What the format cannot express yet: {rows => "empty" | "all" | "refused", reason}
		my $expect = $models->{$name}{expected_failure} // { rows => 'none' };
		my @items = -f "$dir/cate_of_item.npy" ? ('--items', "$dir/cate_of_item.npy") : ();
		my ($stdout, $stderr) = ('', '');
		my $converted = IPC::Run::run(
			[ $python, "$src/tools/din-convert", $library, '--weights',
				"$dir/$name.weights.npz", '--spec', $spec, '-o', $out, @items ],
			'>', \$stdout, '2>', \$stderr);
		if ($expect->{rows} eq 'refused' && !$converted)
		{
			note("$model: skipped, expected to fail (refused): $expect->{reason}");
			next;
		}
		ok($converted, "$model: din-convert writes the model") or diag($stderr);
		next unless $converted;
		note($stderr);
		my $rows = IPC::Run::run(
			[ $python, "$src/test/convert/fixture_rows.py", $library, $spec,
				"$dir/$name.test.npz", $csv ],
			'>', \$stdout, '2>', \$stderr);
		ok($rows, "$model: test rows extracted") or diag($stderr);
		next unless $rows;

		# rows expected to differ are measured and reported, not counted
		my $differs =
		    $expect->{rows} =~ /^(all|refused)$/ ? 'true'
		  : $expect->{rows} eq 'empty'          ? 'cardinality(history) = 0'
		  :                                       'false';
		my ($rc, $result, $err) = $node->psql('postgres', qq{
			SELECT din_import_file('$model', '$out', replace => true);
			CREATE TABLE rows (id int, history bigint[], ad_id bigint, context bigint[],
			                   dense float8[], expected float8);
			COPY rows FROM '$csv' WITH (FORMAT csv, HEADER);
			SELECT count(*), count(p),
			       count(*) FILTER (WHERE cardinality(history) = 0),
			       count(*) FILTER (WHERE abs(p - expected) > $tolerance AND NOT ($differs)),
			       max(abs(p - expected)),
			       max(abs(p - expected)) FILTER (WHERE cardinality(history) = 0)
			  FROM (SELECT r.*, din_score(history, ad_id, '$model', context, dense) AS p
			          FROM rows r) s;
			DROP TABLE rows;}, on_error_stop => 1);
		is($rc, 0, "$model: imported and scored in SQL") or diag($err);
		next if $rc;
		my ($line) = grep { /\|/ } split /\n/, $result;
		my ($n, $scored, $empty, $bad, $max, $max_empty) = split /\|/, $line;
		my $expected_rows = $models->{$name}{test_rows};
		is($n, $expected_rows, "$model: all $expected_rows test rows loaded");
		is($scored, $n, "$model: every row scored");
		is($bad, 0, "$model: every row within $tolerance of the library's pred "
			  . "($empty with an empty history)");
		note(sprintf('%s: max absolute error %.3g over %d rows, %.3g over the empty histories',
				$model, $max, $n, $max_empty || 0));
		note("$model: expected to fail on $expect->{rows} rows: $expect->{reason}")
		  if $expect->{rows} ne 'none';
		$max_error{$model} = $max;
	}
	return \%max_error;
}

1;
