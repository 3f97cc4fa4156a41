from django.db import migrations, models
from django.db.models.functions import Greatest

from crm.rls import unforce

# customers_customer.profile_touched_at is the latest time a contact was added to the
# customer or its record changed (an audit event on it): with created_at and
# last_contact_at, what the self-test's profile freshness reads (customers.selftest). Kept
# by triggers, so that every path (the services, the admin, imports, COPY, cascades, an
# audit event's time corrected) keeps it: statement-level with transition tables, one
# UPDATE per statement for the customers touched, each re-reading its latest contact
# (customers_contact_customer_id) and its latest audit event (audit_object_at).
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION customers_profile_touched(customer_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
  UPDATE customers_customer c SET profile_touched_at = greatest(
    (SELECT max(k.created_at) FROM customers_contact k WHERE k.customer_id = c.id),
    (SELECT max(e.at) FROM crm_auditevent e
      WHERE e.tenant_id = c.tenant_id AND e.object_type = 'customers.customer'
        AND e.object_id = c.public_id::text)
  )
  WHERE c.id = ANY(customer_ids)
$$;

CREATE OR REPLACE FUNCTION customers_profile_contacts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM customers_profile_touched(ARRAY(
      SELECT customer_id FROM old_rows UNION SELECT customer_id FROM new_rows
    ));
  ELSE
    PERFORM customers_profile_touched(ARRAY(SELECT DISTINCT customer_id FROM changed_rows));
  END IF;
  RETURN NULL;
END $$;

-- An audit event's object id as a customer's public id (NULL when it is not a uuid).
CREATE OR REPLACE FUNCTION customers_profile_uuid(object_id text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN object_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN object_id::uuid
  END
$$;

CREATE OR REPLACE FUNCTION customers_profile_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  IF TG_OP = 'UPDATE' THEN
    ids := ARRAY(
      SELECT c.id FROM customers_customer c JOIN (
        SELECT tenant_id, object_id FROM old_rows WHERE object_type = 'customers.customer'
        UNION SELECT tenant_id, object_id FROM new_rows WHERE object_type = 'customers.customer'
      ) e ON c.tenant_id = e.tenant_id AND c.public_id = customers_profile_uuid(e.object_id)
    );
  ELSE
    ids := ARRAY(
      SELECT c.id FROM customers_customer c JOIN (
        SELECT DISTINCT tenant_id, object_id FROM changed_rows
        WHERE object_type = 'customers.customer'
      ) e ON c.tenant_id = e.tenant_id AND c.public_id = customers_profile_uuid(e.object_id)
    );
  END IF;
  IF cardinality(ids) > 0 THEN
    PERFORM customers_profile_touched(ids);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS customers_profile_contact_insert ON customers_contact;
CREATE TRIGGER customers_profile_contact_insert AFTER INSERT ON customers_contact
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_contacts();
DROP TRIGGER IF EXISTS customers_profile_contact_delete ON customers_contact;
CREATE TRIGGER customers_profile_contact_delete AFTER DELETE ON customers_contact
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_contacts();
DROP TRIGGER IF EXISTS customers_profile_contact_update ON customers_contact;
CREATE TRIGGER customers_profile_contact_update AFTER UPDATE ON customers_contact
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_contacts();

DROP TRIGGER IF EXISTS customers_profile_audit_insert ON crm_auditevent;
CREATE TRIGGER customers_profile_audit_insert AFTER INSERT ON crm_auditevent
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_audit();
DROP TRIGGER IF EXISTS customers_profile_audit_delete ON crm_auditevent;
CREATE TRIGGER customers_profile_audit_delete AFTER DELETE ON crm_auditevent
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_audit();
DROP TRIGGER IF EXISTS customers_profile_audit_update ON crm_auditevent;
CREATE TRIGGER customers_profile_audit_update AFTER UPDATE ON crm_auditevent
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_profile_audit();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS customers_profile_contact_insert ON customers_contact;
DROP TRIGGER IF EXISTS customers_profile_contact_delete ON customers_contact;
DROP TRIGGER IF EXISTS customers_profile_contact_update ON customers_contact;
DROP TRIGGER IF EXISTS customers_profile_audit_insert ON crm_auditevent;
DROP TRIGGER IF EXISTS customers_profile_audit_delete ON crm_auditevent;
DROP TRIGGER IF EXISTS customers_profile_audit_update ON crm_auditevent;
DROP FUNCTION IF EXISTS customers_profile_audit();
DROP FUNCTION IF EXISTS customers_profile_uuid(text);
DROP FUNCTION IF EXISTS customers_profile_contacts();
DROP FUNCTION IF EXISTS customers_profile_touched(bigint[]);
"""

# The existing customers, every tenant at once (the owner lifts the forced row security
# for this migration: crm.rls.unforce).
BACKFILL = r"""
UPDATE customers_customer c SET profile_touched_at = touched.at
FROM (
  SELECT customer_id, max(at) AS at FROM (
    SELECT customer_id, created_at AS at FROM customers_contact
    UNION ALL
    SELECT c.id, e.at FROM crm_auditevent e
    JOIN customers_customer c
      ON c.tenant_id = e.tenant_id AND c.public_id::text = e.object_id
    WHERE e.object_type = 'customers.customer'
  ) events GROUP BY customer_id
) touched
WHERE c.id = touched.customer_id;
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            unforce(schema_editor, "customers_customer", "customers_contact", "crm_auditevent")
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_selftest_audit_actor_index"),
        ("customers", "0007_process_due_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="profile_touched_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="profile touched"
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                models.F("tenant"),
                Greatest("created_at", "last_contact_at", "profile_touched_at"),
                name="customer_profile_refreshed",
            ),
        ),
        migrations.RunPython(_run(TRIGGERS), _run(UNTRIGGERS)),
        migrations.RunPython(_run(BACKFILL), migrations.RunPython.noop),
    ]
