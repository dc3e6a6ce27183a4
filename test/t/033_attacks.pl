# Attacks (issue 14): an ordinary login role, and a din_admin member, try to become superuser
# or to crash or block the server through din: objects that shadow the names din's queries use
# (temporary types and functions, functions and operators in public, a search_path of their
# own), forged aggregate states. Each attack must fail: the role stays without superuser, the
# evil code never runs as another role, the server never restarts, and the attacked call either
# works as usual or fails with the error it should.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DinTest qw(din_srcdir din_node);

my $tiny = din_srcdir() . '/test/fixtures/tiny_din.safetensors';
my $node = din_node('attacks', $ENV{DIN_TAP_PORT_ATTACKS} // 5624);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION din;
	CREATE ROLE attacker LOGIN;
	CREATE ROLE admin_attacker LOGIN IN ROLE din_admin;
	-- what many databases still grant: CREATE on public (PostgreSQL 15 no longer does)
	GRANT CREATE ON SCHEMA public TO attacker, admin_attacker;
	CREATE TABLE tiny_file AS SELECT pg_read_binary_file('$tiny') AS data;
	GRANT SELECT ON tiny_file TO admin_attacker;
});

my $expected = '0.618092';
my $models   = 0;

# A model no backend has loaded yet: the next score of it runs the loading queries.
sub fresh_model
{
	my $name = 'm' . ++$models;
	$node->safe_psql('postgres', "SELECT din_import('$name', data) FROM tiny_file");
	return $name;
}

sub score_sql
{
	my ($model) = @_;
	return qq{SELECT round(public.din_score('{100,101,102}', 103, '$model', '{1}', '{0.5}')::numeric, 6)};
}

# psql connected as $role itself (session_user = $role), with verbose errors.
sub as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', $role, '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $out, $err);
}

# The body of every evil function: tell that it ran, and as whom; escalate when it runs as
# anyone but the attackers themselves.
my $evil = q{
	RAISE NOTICE 'evil ran as %', current_user;
	IF current_user NOT IN ('attacker', 'admin_attacker') THEN
		EXECUTE 'ALTER ROLE attacker SUPERUSER';
		EXECUTE 'ALTER ROLE admin_attacker SUPERUSER';
	END IF;
};

# A session open from the start: a crash restart would end it.
my $witness = $node->background_psql('postgres');
my $witness_pid = $witness->query_safe('SELECT pg_backend_pid()');

sub holds
{
	my ($name, $err) = @_;
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_roles WHERE rolsuper AND rolname LIKE '%attacker'}),
		'0', "$name: no attacker became superuser");
	unlike($err // '', qr/evil ran as (?!attacker|admin_attacker)/,
		"$name: the evil code never ran as another role");
	is($witness->query_safe('SELECT pg_backend_pid()'), $witness_pid,
		"$name: the server did not restart");
}

# ---- 1. shadowing the owner's loading queries from the caller's session -------------------
my @caller_attacks = (
	[   'a temporary domain named text',
		qq{CREATE FUNCTION pg_temp.evil(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS
		   \$\$BEGIN $evil RETURN true; END\$\$;
		   CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));}
	],
	[   'temporary domains named jsonb and int4',
		qq{CREATE FUNCTION pg_temp.evil(pg_catalog.jsonb) RETURNS boolean LANGUAGE plpgsql AS
		   \$\$BEGIN $evil RETURN true; END\$\$;
		   CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE));
		   CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (VALUE > 0);}
	],
	[   'temporary functions first in search_path',
		qq{SET search_path = pg_temp, pg_catalog;
		   CREATE FUNCTION pg_temp.jsonb_array_length(pg_catalog.jsonb) RETURNS integer
		     LANGUAGE plpgsql AS \$\$BEGIN $evil RETURN 1; END\$\$;
		   CREATE FUNCTION pg_temp.jsonb_array_elements(pg_catalog.jsonb) RETURNS SETOF jsonb
		     LANGUAGE plpgsql AS \$\$BEGIN $evil RETURN; END\$\$;}
	],
	[   'a temporary operator = first in search_path',
		qq{SET search_path = pg_temp, pg_catalog;
		   CREATE FUNCTION pg_temp.evil_eq(pg_catalog.text, pg_catalog.text) RETURNS boolean
		     LANGUAGE plpgsql AS \$\$BEGIN $evil RETURN \$1 OPERATOR(pg_catalog.=) \$2; END\$\$;
		   CREATE OPERATOR pg_temp.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text,
		     FUNCTION = pg_temp.evil_eq);}
	],
	[   'operators in public ahead of pg_catalog',
		qq{SET search_path = public, pg_catalog;
		   CREATE FUNCTION public.evil_eq(pg_catalog.text, pg_catalog.text) RETURNS boolean
		     LANGUAGE plpgsql AS \$\$BEGIN $evil RETURN \$1 OPERATOR(pg_catalog.=) \$2; END\$\$;
		   CREATE OPERATOR public.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text,
		     FUNCTION = public.evil_eq);
		   CREATE FUNCTION public.evil_arrow(pg_catalog.jsonb, pg_catalog.text) RETURNS jsonb
		     LANGUAGE plpgsql AS \$\$BEGIN $evil RETURN NULL; END\$\$;
		   CREATE OPERATOR public.-> (LEFTARG = pg_catalog.jsonb, RIGHTARG = pg_catalog.text,
		     FUNCTION = public.evil_arrow);}
	],
);
for my $case (@caller_attacks)
{
	my ($name, $setup) = @$case;
	my $model = fresh_model();
	my ($ret, $out, $err) = as('attacker', "$setup\n" . score_sql($model));
	is($out, $expected, "attacker with $name: the model loads and scores as usual")
	  or diag($err);
	holds("attacker with $name", $err);
	# the objects were temporary or dropped with the session; public ones are dropped here
	$node->safe_psql('postgres', q{
		DROP OPERATOR IF EXISTS public.= (text, text);
		DROP OPERATOR IF EXISTS public.-> (jsonb, text);
		DROP FUNCTION IF EXISTS public.evil_eq(text, text), public.evil_arrow(jsonb, text);
	});
}

# the same load through din_rank, din_explain and (as a din_admin member) din_load, din_export
for my $call (
	[ 'attacker', 'din_rank', q{SELECT count(*) FROM public.din_rank('{100}', '{101,102}', 1, '%s', '{1}', '{0.5}')}, '1' ],
	[ 'attacker', 'din_explain', q{SELECT count(*) FROM public.din_explain('{100,101}', 102, '%s', '{1}', '{0.5}')}, '2' ],
	[ 'admin_attacker', 'din_load', q{SELECT din_load('%s') > 0}, 't' ],
	[ 'admin_attacker', 'din_export', q{SELECT length(din_export('%s')) > 0}, 't' ])
{
	my ($role, $name, $sql, $want) = @$call;
	my $model = fresh_model();
	my ($ret, $out, $err) = as($role, qq{
		CREATE FUNCTION pg_temp.evil(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS
		  \$\$BEGIN $evil RETURN true; END\$\$;
		CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
		} . sprintf($sql, $model));
	is($out, $want, "$role: $name under a temporary text domain works as usual");
	holds("$role: $name under a temporary text domain", $err);
}

# ---- 2. forged aggregate states -------------------------------------------------------------
my @states = (
	[ 'auc transition', q{CREATE AGGREGATE pg_temp.evil_auc(float8, boolean) (SFUNC = din_auc_trans,
		STYPE = bytea, INITCOND = '\x444e444d0100000000000000000000000100000000000000000000000000000002000000');
		SELECT pg_temp.evil_auc(0.5, true)} ],
	[ 'gauc transition', q{CREATE AGGREGATE pg_temp.evil_gauc(bigint, float8, boolean) (SFUNC = din_gauc_trans,
		STYPE = bytea, INITCOND = '\x444e444d0200000000000000ffffffffffffff0f00000000000000000100000000000000');
		SELECT pg_temp.evil_gauc(1, 0.5, false)} ],
	[ 'combine', q{CREATE AGGREGATE pg_temp.evil_combine(bytea) (SFUNC = din_metrics_combine,
		STYPE = bytea, INITCOND = '\x444e444d010000000000000000000000000000000000000000000000ffffffff00000000');
		SELECT pg_temp.evil_combine(s) FROM (SELECT '\x444e444d01000000000000000100000000000000000000000000000001000000000000000000000000000000'::bytea s) x} ],
	[ 'final', q{SELECT din_auc_final('\x444e444d0100000000000000ffff0000000000000000000000000000ffff000000000000')} ],
);
for my $case (@states)
{
	my ($name, $sql) = @$case;
	my ($ret, $out, $err) = as('attacker', $sql);
	like($err, qr/22P03.*invalid din metrics aggregate state/s, "forged $name state: error 22P03");
	holds("forged $name state", $err);
}

# ---- 3. a superuser's import, update and rename under objects an attacker put in public ------
my $public_objects = qq{
	CREATE FUNCTION public.unnest(bigint[]) RETURNS SETOF bigint LANGUAGE plpgsql AS
	  \$\$BEGIN $evil RETURN QUERY SELECT pg_catalog.unnest(\$1); END\$\$;
	CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE plpgsql AS
	  \$\$BEGIN $evil RETURN pg_catalog.nextval(\$1::regclass); END\$\$;
	CREATE FUNCTION public.jsonb_array_length(jsonb) RETURNS integer LANGUAGE plpgsql AS
	  \$\$BEGIN $evil RETURN pg_catalog.jsonb_array_length(\$1); END\$\$;
	CREATE FUNCTION public.evil_ne(text, text) RETURNS boolean LANGUAGE plpgsql AS
	  \$\$BEGIN $evil RETURN \$1 OPERATOR(pg_catalog.<>) \$2; END\$\$;
	CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_ne);
	CREATE FUNCTION public.evil_plus(integer, integer) RETURNS integer LANGUAGE plpgsql AS
	  \$\$BEGIN $evil RETURN \$1 OPERATOR(pg_catalog.+) \$2; END\$\$;
	CREATE OPERATOR public.+ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_plus);
};
my $drop_public_objects = q{
	DROP OPERATOR public.<> (text, text);
	DROP OPERATOR public.+ (integer, integer);
	DROP FUNCTION public.unnest(bigint[]), public.nextval(text), public.jsonb_array_length(jsonb),
	  public.evil_ne(text, text), public.evil_plus(integer, integer);
};
for my $creator ('attacker', 'admin_attacker')
{
	my ($ret, $out, $err) = as($creator, $public_objects);
	is($ret, 0, "$creator put functions and operators in public");
	($ret, $out, $err) = $node->psql('postgres', qq{
		SET search_path = public, pg_catalog;
		SELECT din_import('victim', data) FROM tiny_file;
		SELECT din_import('victim', data, replace => true) FROM tiny_file;
		UPDATE din_models SET name = 'victim2' WHERE name = 'victim';
		UPDATE din_models SET config = config WHERE name = 'victim2';
		INSERT INTO din_items SELECT 'victim2', item_id + 1000, attributes FROM din_items WHERE model = 'victim2';
		DELETE FROM din_items WHERE model = 'victim2' AND item_id > 1000;
		} . score_sql('victim2') . q{;
		SELECT din_drop('victim2');}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	is($ret, 0, "objects of $creator: a superuser imports, replaces, renames, edits and drops a model with public first in search_path");
	like($out, qr/^$expected$/m, "objects of $creator: the superuser scores it as usual");
	holds("superuser working under objects of $creator", $err);
	$node->safe_psql('postgres', $drop_public_objects);
}

# the same objects, with a din_admin member as the victim
my ($ret, $out, $err) = as('attacker', $public_objects);
($ret, $out, $err) = as('admin_attacker', qq{
	SET search_path = public, pg_catalog;
	SELECT din_import('victim3', data) FROM tiny_file;
	UPDATE din_models SET name = 'victim4' WHERE name = 'victim3';
	SELECT din_drop('victim4');});
is($out, "1\nt", 'a din_admin member imports, renames and drops under the same objects');
holds('din_admin member working under objects of attacker', $err);
$node->safe_psql('postgres', $drop_public_objects);

# ---- 4. a denial of service through an operator in public ----------------------------------
($ret, $out, $err) = as('attacker', q{
	CREATE FUNCTION public.jsonb_arrow(jsonb, jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
	CREATE OPERATOR public.-> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = public.jsonb_arrow);
	CREATE OPERATOR public.->> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = public.jsonb_arrow);});
is($ret, 0, 'the attacker created operators -> and ->> on jsonb in public');
for my $role ('postgres', 'attacker', 'admin_attacker')
{
	my $model = fresh_model();
	($ret, $out, $err) = as($role, score_sql($model));
	is($out, $expected, "$role loads and scores a model despite the operators");
	holds("operators -> on jsonb, $role scoring", $err);
}

$witness->quit;
$node->stop;
done_testing();
