# DinTest - what din's Perl TAP tests share: the fixture model, a node that preloads din, and
# SQL helpers that derive valid scoring inputs from whatever model was imported (so a test
# works with any fixture, whatever its vocabularies, attributes, context and dense fields).
package DinTest;

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use Exporter 'import';

our @EXPORT_OK = qw(din_srcdir din_fixture din_node din_install_helpers);

# The source tree: run-all.sh passes its world-readable staging copy, which the server
# (another OS user in CI) can read fixtures from.
sub din_srcdir
{
	return $ENV{DIN_SRCDIR} // abs_path(dirname(__FILE__) . '/../..');
}

# DIN_FIXTURE, else the DeepCTR-Torch DIN fixture, else any model file in test/fixtures.
sub din_fixture
{
	return $ENV{DIN_FIXTURE} if $ENV{DIN_FIXTURE};
	my $dir       = din_srcdir() . '/test/fixtures';
	my $preferred = "$dir/din_deepctr_torch.safetensors";
	return $preferred if -f $preferred;
	my @any = sort glob("$dir/*.safetensors");
	die "no model file in $dir (run make fixtures)\n" unless @any;
	return $any[0];
}

# A started node with din preloaded. PostgreSQL::Test::Cluster talks to it through a unix
# socket in a private directory, so the port only names the socket and cannot collide.
sub din_node
{
	my ($name, $port) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name, port => $port);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'din'\nfsync = off\n");
	$node->start;
	return $node;
}

my $helpers_sql = <<'SQL';
-- Up to n valid raw ids of a field: its vocabulary when it has one, else rows 0..n-1.
CREATE FUNCTION din_test_ids(m text, f text, n int) RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT COALESCE(
    (SELECT array_agg(raw_id ORDER BY row_index)
       FROM (SELECT raw_id, row_index FROM din_vocab WHERE model = m AND field = f
              ORDER BY row_index LIMIT n) v),
    (SELECT array_agg(g::bigint ORDER BY g)
       FROM din_models d, jsonb_array_elements(d.config->'fields') x,
            generate_series(0, least(n, (x->>'rows')::int) - 1) g
      WHERE d.name = m AND x->>'name' = f))
$$;
-- Candidate item ids: items of the items table when the model has one (an item missing from
-- it has unknown attributes, an error when their field's oov rule is "error"), else ids of
-- the target's first field.
CREATE FUNCTION din_test_items(m text, n int) RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT COALESCE(
    (SELECT array_agg(item_id ORDER BY item_id)
       FROM (SELECT item_id FROM din_items WHERE model = m ORDER BY item_id LIMIT n) i),
    din_test_ids(m, (SELECT config->'target'->>0 FROM din_models WHERE name = m), n))
$$;
-- One user: a history of up to 8 items valid for the behaviour field, the model's context
-- and dense inputs, and n candidates (the valid items repeated cyclically). PL/pgSQL so each
-- list is computed once (an inlined SQL function re-evaluates them per candidate).
CREATE FUNCTION din_test_case(m text, n int)
  RETURNS TABLE (history bigint[], candidates bigint[], context bigint[], dense float8[])
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  cfg jsonb := (SELECT config FROM din_models WHERE name = m);
  items bigint[] := din_test_items(m, 1000);
  beh bigint[] := din_test_ids(m, cfg->'behaviour'->>0, 1000);
BEGIN
  history := (SELECT (array_agg(i ORDER BY o))[1:8]
                FROM unnest(items) WITH ORDINALITY u(i, o) WHERE i = ANY (beh));
  history := COALESCE(history, beh[1:8]);
  candidates := (SELECT array_agg(items[1 + g % cardinality(items)] ORDER BY g)
                   FROM generate_series(0, n - 1) g);
  context := (SELECT array_agg((din_test_ids(m, c, 1))[1] ORDER BY o)
                FROM jsonb_array_elements_text(COALESCE(cfg->'context', '[]'))
                     WITH ORDINALITY AS x(c, o));
  IF COALESCE((cfg->>'dense')::int, 0) > 0 THEN
    dense := array_fill(0.25::float8, ARRAY[(cfg->>'dense')::int]);
  END IF;
  RETURN NEXT;
END
$$;
SQL

# Creates din and the helpers in a database.
sub din_install_helpers
{
	my ($node, $db) = @_;
	$node->safe_psql($db, "CREATE EXTENSION din;\n$helpers_sql");
	return;
}

1;
