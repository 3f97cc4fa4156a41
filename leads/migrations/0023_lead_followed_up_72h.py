from django.db import migrations, models

from crm.rls import unforce

# leads_lead.followed_up_72h: whether the lead's owner logged a follow-up on it
# (customers_interaction by the owner) within 72 hours of the assignment, assigned_at ≤
# at ≤ assigned_at + 72 h: the process report's 72 h follow-up (leads.reports.process),
# read from the lead rather than an EXISTS per lead at each request. Triggers, so that
# every path keeps it: statement-level with transition tables on follow-ups inserted and
# deleted, row-level on a follow-up whose lead, author or time changes; each lead touched
# is recomputed through the index interaction_lead (tenant, lead, at) and written only
# when its flag changes. A BEFORE trigger on the lead recomputes the flag whenever an
# update changes the owner, the assignment or the flag itself (a hand-over to another
# owner, a save from a stale copy).
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION leads_followed_72h_of(tenant bigint, lead bigint, owner bigint,
                                                 assigned timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT $3 IS NOT NULL AND $4 IS NOT NULL AND EXISTS (
    SELECT 1 FROM customers_interaction i
    WHERE i.tenant_id = $1 AND i.lead_id = $2 AND i.by_id = $3
      AND i.at >= $4 AND i.at <= $4 + interval '72 hours'
  )
$$;

CREATE OR REPLACE FUNCTION leads_followed_72h(lead_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
  UPDATE leads_lead l SET followed_up_72h = NOT l.followed_up_72h
  WHERE l.id = ANY(lead_ids)
    AND l.followed_up_72h IS DISTINCT FROM
        leads_followed_72h_of(l.tenant_id, l.id, l.owner_id, l.assigned_at)
$$;

CREATE OR REPLACE FUNCTION leads_followed_72h_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM leads_followed_72h(ARRAY(
    SELECT DISTINCT lead_id FROM changed_rows WHERE lead_id IS NOT NULL
  ));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION leads_followed_72h_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM leads_followed_72h(ARRAY(
    SELECT DISTINCT id FROM unnest(ARRAY[OLD.lead_id, NEW.lead_id]) AS ids(id)
    WHERE id IS NOT NULL
  ));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION leads_followed_72h_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.followed_up_72h := leads_followed_72h_of(
    NEW.tenant_id, NEW.id, NEW.owner_id, NEW.assigned_at
  );
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS leads_followed_72h_insert ON customers_interaction;
CREATE TRIGGER leads_followed_72h_insert AFTER INSERT ON customers_interaction
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_followed_72h_rows();
DROP TRIGGER IF EXISTS leads_followed_72h_delete ON customers_interaction;
CREATE TRIGGER leads_followed_72h_delete AFTER DELETE ON customers_interaction
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_followed_72h_rows();
DROP TRIGGER IF EXISTS leads_followed_72h_update ON customers_interaction;
CREATE TRIGGER leads_followed_72h_update AFTER UPDATE ON customers_interaction
  FOR EACH ROW WHEN (
    OLD.lead_id IS DISTINCT FROM NEW.lead_id
    OR OLD.by_id IS DISTINCT FROM NEW.by_id
    OR OLD.at IS DISTINCT FROM NEW.at
  )
  EXECUTE FUNCTION leads_followed_72h_row();
DROP TRIGGER IF EXISTS leads_followed_72h_guard ON leads_lead;
CREATE TRIGGER leads_followed_72h_guard BEFORE UPDATE ON leads_lead
  FOR EACH ROW WHEN (
    OLD.followed_up_72h IS DISTINCT FROM NEW.followed_up_72h
    OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
    OR OLD.assigned_at IS DISTINCT FROM NEW.assigned_at
  )
  EXECUTE FUNCTION leads_followed_72h_guard();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS leads_followed_72h_insert ON customers_interaction;
DROP TRIGGER IF EXISTS leads_followed_72h_delete ON customers_interaction;
DROP TRIGGER IF EXISTS leads_followed_72h_update ON customers_interaction;
DROP TRIGGER IF EXISTS leads_followed_72h_guard ON leads_lead;
DROP FUNCTION IF EXISTS leads_followed_72h_rows();
DROP FUNCTION IF EXISTS leads_followed_72h_row();
DROP FUNCTION IF EXISTS leads_followed_72h_guard();
DROP FUNCTION IF EXISTS leads_followed_72h(bigint[]);
DROP FUNCTION IF EXISTS leads_followed_72h_of(bigint, bigint, bigint, timestamptz);
"""

# The existing leads, every tenant at once (the owner lifts the forced row security for
# this migration: crm.rls.unforce); the guard recomputes each flag it sets.
BACKFILL = r"""
UPDATE leads_lead l SET followed_up_72h = true
WHERE NOT l.followed_up_72h AND l.owner_id IS NOT NULL AND l.assigned_at IS NOT NULL
  AND EXISTS (
    SELECT 1 FROM customers_interaction i
    WHERE i.tenant_id = l.tenant_id AND i.lead_id = l.id AND i.by_id = l.owner_id
      AND i.at >= l.assigned_at AND i.at <= l.assigned_at + interval '72 hours'
  );
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            unforce(schema_editor, "leads_lead", "customers_interaction")
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_interaction_due_covering"),
        ("leads", "0022_lead_has_opportunity"),
    ]

    operations = [
        migrations.AddField(
            model_name="lead",
            name="followed_up_72h",
            field=models.BooleanField(
                db_default=False,
                default=False,
                editable=False,
                verbose_name="followed up within 72 h",
            ),
        ),
        migrations.RunPython(_run(TRIGGERS), _run(UNTRIGGERS)),
        migrations.RunPython(_run(BACKFILL), migrations.RunPython.noop),
    ]
