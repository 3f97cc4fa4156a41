from django.db import migrations

from crm.rls import unforce

# leads_lead.has_opportunity: whether an opportunity was opened from the lead (its origin
# lead), for the lead-to-contract cycle's valid leads (opportunities.cycle_metrics). Kept
# by triggers, so that every path (the service, imports, COPY, cascades, an origin lead
# set or changed afterwards) keeps it: statement-level with transition tables on insert
# and delete, row-level on an update that moves the origin lead. Each lead touched is
# recounted through the index opportunity_lead (tenant, origin lead) and written only
# when its flag changes. A BEFORE trigger on the lead recomputes the flag whenever an
# UPDATE would change it, so a lead saved from a stale copy (loaded before its first
# opportunity) keeps it true.
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION opportunities_lead_flag(lead_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
  UPDATE leads_lead l SET has_opportunity = NOT l.has_opportunity
  WHERE l.id = ANY(lead_ids)
    AND l.has_opportunity IS DISTINCT FROM EXISTS (
      SELECT 1 FROM opportunities_opportunity o
      WHERE o.tenant_id = l.tenant_id AND o.origin_lead_id = l.id
    )
$$;

CREATE OR REPLACE FUNCTION opportunities_lead_flag_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opportunities_lead_flag(ARRAY(
    SELECT DISTINCT origin_lead_id FROM changed_rows WHERE origin_lead_id IS NOT NULL
  ));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION opportunities_lead_flag_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opportunities_lead_flag(ARRAY(
    SELECT DISTINCT id FROM unnest(ARRAY[OLD.origin_lead_id, NEW.origin_lead_id]) AS ids(id)
    WHERE id IS NOT NULL
  ));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION opportunities_lead_flag_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.has_opportunity := EXISTS (
    SELECT 1 FROM opportunities_opportunity o
    WHERE o.tenant_id = NEW.tenant_id AND o.origin_lead_id = NEW.id
  );
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS opportunities_lead_flag_insert ON opportunities_opportunity;
CREATE TRIGGER opportunities_lead_flag_insert AFTER INSERT ON opportunities_opportunity
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION opportunities_lead_flag_rows();
DROP TRIGGER IF EXISTS opportunities_lead_flag_delete ON opportunities_opportunity;
CREATE TRIGGER opportunities_lead_flag_delete AFTER DELETE ON opportunities_opportunity
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION opportunities_lead_flag_rows();
DROP TRIGGER IF EXISTS opportunities_lead_flag_update ON opportunities_opportunity;
CREATE TRIGGER opportunities_lead_flag_update AFTER UPDATE ON opportunities_opportunity
  FOR EACH ROW WHEN (OLD.origin_lead_id IS DISTINCT FROM NEW.origin_lead_id)
  EXECUTE FUNCTION opportunities_lead_flag_row();
DROP TRIGGER IF EXISTS opportunities_lead_flag_guard ON leads_lead;
CREATE TRIGGER opportunities_lead_flag_guard BEFORE UPDATE OF has_opportunity ON leads_lead
  FOR EACH ROW WHEN (OLD.has_opportunity IS DISTINCT FROM NEW.has_opportunity)
  EXECUTE FUNCTION opportunities_lead_flag_guard();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS opportunities_lead_flag_insert ON opportunities_opportunity;
DROP TRIGGER IF EXISTS opportunities_lead_flag_delete ON opportunities_opportunity;
DROP TRIGGER IF EXISTS opportunities_lead_flag_update ON opportunities_opportunity;
DROP TRIGGER IF EXISTS opportunities_lead_flag_guard ON leads_lead;
DROP FUNCTION IF EXISTS opportunities_lead_flag_rows();
DROP FUNCTION IF EXISTS opportunities_lead_flag_row();
DROP FUNCTION IF EXISTS opportunities_lead_flag_guard();
DROP FUNCTION IF EXISTS opportunities_lead_flag(bigint[]);
"""

# The existing leads, every tenant at once (the owner lifts the forced row security for
# this migration: crm.rls.unforce); the guard trigger checks each flag it sets.
BACKFILL = r"""
UPDATE leads_lead l SET has_opportunity = true
WHERE NOT l.has_opportunity AND l.id IN (
  SELECT origin_lead_id FROM opportunities_opportunity WHERE origin_lead_id IS NOT NULL
);
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            unforce(schema_editor, "leads_lead", "opportunities_opportunity")
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0022_lead_has_opportunity"),
        ("opportunities", "0006_won_lead_index"),
    ]

    operations = [
        migrations.RunPython(_run(TRIGGERS), _run(UNTRIGGERS)),
        migrations.RunPython(_run(BACKFILL), migrations.RunPython.noop),
    ]
