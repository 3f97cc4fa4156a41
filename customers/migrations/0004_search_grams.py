"""The customer search's gram table (customers.models.CustomerSearchGram) and the triggers
that keep it, as the lead search's (leads 0013): statement-level with transition tables
for INSERT and DELETE, row-level with a WHEN clause for UPDATE of the name. Existing
customers get their grams here, loaded before the primary key is built."""

import django.db.models.deletion
from django.db import migrations, models

from crm.rls import unforce

# The grams of one name: keep crm.search.text_grams() in step with it.
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION customers_search_grams(name text)
RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT DISTINCT substr(lower(name), i, 2) FROM generate_series(1, length(name)) AS i
$$;

CREATE OR REPLACE FUNCTION customers_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customers_searchgram (tenant_id, gram, customer_id)
  SELECT n.tenant_id, g, n.id FROM new_rows n CROSS JOIN LATERAL customers_search_grams(n.name) g;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customers_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM customers_searchgram s
  USING old_rows o CROSS JOIN LATERAL customers_search_grams(o.name) g
  WHERE s.tenant_id = o.tenant_id AND s.gram = g AND s.customer_id = o.id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customers_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM customers_searchgram s
  WHERE s.tenant_id = OLD.tenant_id AND s.customer_id = OLD.id
    AND s.gram = ANY (ARRAY(SELECT customers_search_grams(OLD.name)));
  INSERT INTO customers_searchgram (tenant_id, gram, customer_id)
  SELECT NEW.tenant_id, g, NEW.id FROM customers_search_grams(NEW.name) g;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS customers_search_insert ON customers_customer;
CREATE TRIGGER customers_search_insert AFTER INSERT ON customers_customer
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_search_insert();
DROP TRIGGER IF EXISTS customers_search_delete ON customers_customer;
CREATE TRIGGER customers_search_delete AFTER DELETE ON customers_customer
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION customers_search_delete();
DROP TRIGGER IF EXISTS customers_search_update ON customers_customer;
CREATE TRIGGER customers_search_update AFTER UPDATE ON customers_customer
  FOR EACH ROW WHEN (
    OLD.name IS DISTINCT FROM NEW.name
    OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
    OR OLD.id IS DISTINCT FROM NEW.id
  ) EXECUTE FUNCTION customers_search_update();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS customers_search_insert ON customers_customer;
DROP TRIGGER IF EXISTS customers_search_delete ON customers_customer;
DROP TRIGGER IF EXISTS customers_search_update ON customers_customer;
DROP FUNCTION IF EXISTS customers_search_update();
DROP FUNCTION IF EXISTS customers_search_delete();
DROP FUNCTION IF EXISTS customers_search_insert();
DROP FUNCTION IF EXISTS customers_search_grams(text);
"""

BACKFILL = r"""
ALTER TABLE customers_searchgram DROP CONSTRAINT customers_searchgram_pkey;
INSERT INTO customers_searchgram (tenant_id, gram, customer_id)
SELECT c.tenant_id, g, c.id
FROM customers_customer c CROSS JOIN LATERAL customers_search_grams(c.name) g;
ALTER TABLE customers_searchgram ADD CONSTRAINT customers_searchgram_pkey
  PRIMARY KEY (tenant_id, gram, customer_id);
ANALYZE customers_searchgram;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TRIGGERS)
    unforce(schema_editor, "customers_customer")  # every tenant's customers, as the owner
    schema_editor.execute(BACKFILL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(UNTRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0005_outlet"),
        ("customers", "0003_customer_list"),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomerSearchGram",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "tenant_id",
                        "gram",
                        "customer_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.tenant",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
                ("gram", models.CharField(db_collation="C", max_length=2)),
            ],
            options={
                "verbose_name": "customer search gram",
                "db_table": "customers_searchgram",
            },
        ),
        migrations.RunPython(forward, backward),
    ]
