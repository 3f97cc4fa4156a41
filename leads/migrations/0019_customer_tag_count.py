from django.db import migrations

from crm.rls import unforce

# customers_customer.lead_tag_count is the number of different tags the customer's leads
# carry between them (the self-test's "customers with 3 tags", leads.selftest). Triggers,
# so that every path (tagging rules, the lead form, imports, COPY, cascades, a lead moved
# to another customer) keeps it: statement-level with transition tables on the leads'
# tags, row-level on a lead whose customer changes. Each customer touched is recounted
# through the indexes leads_lead_customer_id and leads_lead_tags' (lead_id, tag_id), and
# written only when its count changed.
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION leads_customer_tag_count(customer_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
  UPDATE customers_customer c SET lead_tag_count = counted.n
  FROM (
    SELECT id, (
      SELECT count(DISTINCT lt.tag_id) FROM leads_lead l
      JOIN leads_lead_tags lt ON lt.lead_id = l.id
      WHERE l.customer_id = ids.id
    ) AS n
    FROM unnest(customer_ids) AS ids(id)
  ) counted
  WHERE c.id = counted.id AND c.lead_tag_count IS DISTINCT FROM counted.n
$$;

CREATE OR REPLACE FUNCTION leads_customer_tags_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM leads_customer_tag_count(ARRAY(
      SELECT l.customer_id FROM leads_lead l
      WHERE l.customer_id IS NOT NULL AND l.id IN (
        SELECT lead_id FROM old_rows UNION SELECT lead_id FROM new_rows
      )
    ));
  ELSE
    PERFORM leads_customer_tag_count(ARRAY(
      SELECT DISTINCT l.customer_id FROM leads_lead l
      WHERE l.customer_id IS NOT NULL AND l.id IN (SELECT lead_id FROM changed_rows)
    ));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION leads_customer_tags_lead() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM leads_customer_tag_count(ARRAY(
    SELECT DISTINCT id FROM unnest(ARRAY[OLD.customer_id, NEW.customer_id]) AS ids(id)
    WHERE id IS NOT NULL
  ));
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS leads_customer_tags_insert ON leads_lead_tags;
CREATE TRIGGER leads_customer_tags_insert AFTER INSERT ON leads_lead_tags
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_customer_tags_rows();
DROP TRIGGER IF EXISTS leads_customer_tags_delete ON leads_lead_tags;
CREATE TRIGGER leads_customer_tags_delete AFTER DELETE ON leads_lead_tags
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_customer_tags_rows();
DROP TRIGGER IF EXISTS leads_customer_tags_update ON leads_lead_tags;
CREATE TRIGGER leads_customer_tags_update AFTER UPDATE ON leads_lead_tags
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_customer_tags_rows();
DROP TRIGGER IF EXISTS leads_customer_tags_lead ON leads_lead;
CREATE TRIGGER leads_customer_tags_lead AFTER UPDATE ON leads_lead
  FOR EACH ROW WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id)
  EXECUTE FUNCTION leads_customer_tags_lead();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS leads_customer_tags_insert ON leads_lead_tags;
DROP TRIGGER IF EXISTS leads_customer_tags_delete ON leads_lead_tags;
DROP TRIGGER IF EXISTS leads_customer_tags_update ON leads_lead_tags;
DROP TRIGGER IF EXISTS leads_customer_tags_lead ON leads_lead;
DROP FUNCTION IF EXISTS leads_customer_tags_rows();
DROP FUNCTION IF EXISTS leads_customer_tags_lead();
DROP FUNCTION IF EXISTS leads_customer_tag_count(bigint[]);
"""

# The existing customers, every tenant at once (the owner lifts the forced row security
# for this migration: crm.rls.unforce).
BACKFILL = r"""
UPDATE customers_customer c SET lead_tag_count = counted.n
FROM (
  SELECT l.customer_id, count(DISTINCT lt.tag_id) AS n
  FROM leads_lead l JOIN leads_lead_tags lt ON lt.lead_id = l.id
  WHERE l.customer_id IS NOT NULL
  GROUP BY l.customer_id
) counted
WHERE c.id = counted.customer_id;
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            unforce(schema_editor, "customers_customer", "leads_lead", "leads_lead_tags")
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0009_lead_tag_count"),
        ("leads", "0018_cycle_activity"),
    ]

    operations = [
        migrations.RunPython(_run(TRIGGERS), _run(UNTRIGGERS)),
        migrations.RunPython(_run(BACKFILL), migrations.RunPython.noop),
    ]
