"""crm_row_estimate(query): the planner's estimate of a SELECT's rows (EXPLAIN, never run),
for lists that count up to a cap and show "about N" beyond it (crm.tables.IdsFirstPaginator).
Runs with the caller's rights: the estimate is planned under the caller's row-level
security, like the query itself."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION crm_row_estimate(query text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  plan json;
BEGIN
  IF query !~* '^\s*select\s' THEN
    RAISE EXCEPTION 'crm_row_estimate: a SELECT only';
  END IF;
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
END $$;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS crm_row_estimate(text)")


class Migration(migrations.Migration):
    dependencies = [("crm", "0005_outlet")]

    operations = [migrations.RunPython(forward, backward)]
