# Privileges (issue 9): any role scores, but only din_admin (or a role granted more) changes
# models or reads their weights; din_import_file reads server files only for roles PostgreSQL
# allows to; scoring reads the weights as the extension owner without SECURITY DEFINER.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);

my $tiny = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node = din_node('privileges', $ENV{DIN_TAP_PORT_PRIVILEGES} // 5621);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION din;
	SELECT din_import_file('t', '$tiny');
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	GRANT din_admin TO bob;
	CREATE ROLE carol LOGIN;
	GRANT din_admin, pg_read_server_files TO carol;
	GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO carol;
});

my $score = q{SELECT round(din_score('{100,101,102}', 103, 't', '{1}', '{0.5}')::numeric, 6)};
sub as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role; $sql",
		on_error_stop => 1, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $out, $err);
}
sub denied
{
	my ($role, $sql, $name) = @_;
	my ($ret, $out, $err) = as($role, $sql);
	like($err, qr/42501/, "$role: $name is refused with 42501");
}

# an unprivileged role scores, ranks and explains, and sees which models exist
my ($ret, $out) = as('alice', "$score; SELECT count(*) FROM din_rank('{100}', '{101,102}', 1, 't', '{1}', '{0.5}'); SELECT name FROM din_models;");
is($ret, 0, 'alice scores without any grant');
is($out, "0.618092\n1\nt", 'with the reference score, din_rank and the model list');
# ... but cannot read the weights, items or vocabularies, nor export them
denied('alice', 'SELECT count(*) FROM din_tensors', 'reading din_tensors');
denied('alice', 'SELECT count(*) FROM din_items', 'reading din_items');
denied('alice', 'SELECT count(*) FROM din_vocab', 'reading din_vocab');
denied('alice', q{SELECT din_export('t')}, 'din_export');
# ... nor change them
denied('alice', q{SELECT din_import('x', pg_read_binary_file('$tiny'))}, 'din_import with a server file');
denied('alice', q{SELECT din_import('x', '\x00')}, 'din_import');
denied('alice', q{SELECT din_drop('t')}, 'din_drop');
denied('alice', q{SELECT din_load('t')}, 'din_load');
denied('alice', q{UPDATE din_models SET comment = 'x'}, 'updating din_models');
denied('alice', q{DELETE FROM din_tensors}, 'deleting weights');
denied('alice', qq{SELECT din_import_file('x', '$tiny')}, 'din_import_file');
# a failed scoring call leaves the caller's own identity in place
($ret, $out) = as('alice', "SELECT din_score('{100}', 103, 'nope', '{1}', '{0.5}'); ");
is($ret, 3, 'an error while loading as the owner');
($ret, $out) = as('alice', q{DO $$ BEGIN PERFORM din_score('{100}', 103, 'nope', '{1}', '{0.5}'); EXCEPTION WHEN OTHERS THEN NULL; END $$; SELECT current_user, session_user});
is($out, 'alice|postgres', 'restores the current user after an error');

# din_admin manages models, but din_import_file still needs the right to read server files
($ret, $out) = as('bob', qq{SELECT din_import('b', din_export('t')); SELECT din_load('b') > 0; SELECT count(*) > 0 FROM din_tensors WHERE model = 'b'; SELECT din_drop('b');});
is($out, "1\nt\nt\nt", 'din_admin imports, exports, loads, reads weights and drops');
denied('bob', qq{SELECT din_import_file('x', '$tiny')}, 'din_import_file without pg_read_server_files');
($ret, $out) = as('carol', qq{SELECT din_import_file('c', '$tiny'); SELECT din_drop('c');});
is($out, "1\nt", 'din_admin allowed to read server files imports them');

# nothing of din runs with its owner's rights, and no function is SECURITY DEFINER
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
	 JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'din' WHERE p.prosecdef}),
	'0', 'no SECURITY DEFINER function');
is($node->safe_psql('postgres', q{
	SELECT string_agg(p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', ', ' ORDER BY 1)
	  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
	  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'din'
	 WHERE p.proname LIKE 'din\_%' AND NOT has_function_privilege('public', p.oid, 'EXECUTE')}),
	'din_distribute_models(), din_drop(model text), din_export(model text), '
	  . 'din_import(model text, data bytea, replace boolean, comment text), '
	  . 'din_import_file(model text, path text, replace boolean, comment text), din_load(model text)',
	'exactly the management functions are revoked from PUBLIC');
# hostile model names reach SQL only as parameters
($ret, $out) = as('alice', q{SELECT din_score('{100}', 103, $q$t'; DROP TABLE din_models; --$q$, '{1}', '{0.5}')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM din_models'), '1', 'a quote in a model name is only a name');

$node->stop;
done_testing();
