"""The lead search's gram table (leads.models.search.SearchGram) and the triggers that keep
it: statement-level with transition tables for INSERT and DELETE (one set-based statement
for a bulk load), row-level with a WHEN clause for UPDATE (only when a searched column
changes). Existing leads get their grams here, as the owner. docs/decisions.md, "Lead
search through a gram table"."""

import django.db.models.deletion
from django.db import migrations, models

from crm.rls import unforce

# The grams of one lead: keep leads.search.term_grams() in step with it.
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION leads_search_grams(company text, contact text, phone text)
RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT DISTINCT g FROM (
    SELECT substr(f, i, 2) AS g
    FROM unnest(ARRAY[lower(company), lower(contact)]) AS f, generate_series(1, length(f)) AS i
    UNION ALL
    SELECT '#' || substr(d, i, 3)
    FROM regexp_replace(phone, '\D', '', 'g') AS d, generate_series(1, length(d) - 2) AS i
  ) grams
$$;

CREATE OR REPLACE FUNCTION leads_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO leads_searchgram (tenant_id, gram, lead_id)
  SELECT n.tenant_id, g, n.id
  FROM new_rows n CROSS JOIN LATERAL leads_search_grams(n.company, n.contact_name, n.phone) g;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION leads_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM leads_searchgram s
  USING old_rows o CROSS JOIN LATERAL leads_search_grams(o.company, o.contact_name, o.phone) g
  WHERE s.tenant_id = o.tenant_id AND s.gram = g AND s.lead_id = o.id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION leads_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM leads_searchgram s
  WHERE s.tenant_id = OLD.tenant_id AND s.lead_id = OLD.id
    AND s.gram = ANY (ARRAY(SELECT leads_search_grams(OLD.company, OLD.contact_name, OLD.phone)));
  INSERT INTO leads_searchgram (tenant_id, gram, lead_id)
  SELECT NEW.tenant_id, g, NEW.id FROM leads_search_grams(NEW.company, NEW.contact_name, NEW.phone) g;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS leads_search_insert ON leads_lead;
CREATE TRIGGER leads_search_insert AFTER INSERT ON leads_lead
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_search_insert();
DROP TRIGGER IF EXISTS leads_search_delete ON leads_lead;
CREATE TRIGGER leads_search_delete AFTER DELETE ON leads_lead
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION leads_search_delete();
DROP TRIGGER IF EXISTS leads_search_update ON leads_lead;
CREATE TRIGGER leads_search_update AFTER UPDATE ON leads_lead
  FOR EACH ROW WHEN (
    OLD.company IS DISTINCT FROM NEW.company
    OR OLD.contact_name IS DISTINCT FROM NEW.contact_name
    OR OLD.phone IS DISTINCT FROM NEW.phone
    OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
    OR OLD.id IS DISTINCT FROM NEW.id
  ) EXECUTE FUNCTION leads_search_update();
"""

UNTRIGGERS = r"""
DROP TRIGGER IF EXISTS leads_search_insert ON leads_lead;
DROP TRIGGER IF EXISTS leads_search_delete ON leads_lead;
DROP TRIGGER IF EXISTS leads_search_update ON leads_lead;
DROP FUNCTION IF EXISTS leads_search_update();
DROP FUNCTION IF EXISTS leads_search_delete();
DROP FUNCTION IF EXISTS leads_search_insert();
DROP FUNCTION IF EXISTS leads_search_grams(text, text, text);
"""

# Loaded before its primary key is built: 2.1 million leads' 54 million grams loaded in
# 3.2 minutes and keyed in 44 s, where loading them through the key took 6 minutes and
# left it 3.7 GB instead of 2.1 GB.
BACKFILL = r"""
ALTER TABLE leads_searchgram DROP CONSTRAINT leads_searchgram_pkey;
INSERT INTO leads_searchgram (tenant_id, gram, lead_id)
SELECT l.tenant_id, g, l.id
FROM leads_lead l CROSS JOIN LATERAL leads_search_grams(l.company, l.contact_name, l.phone) g;
ALTER TABLE leads_searchgram ADD CONSTRAINT leads_searchgram_pkey
  PRIMARY KEY (tenant_id, gram, lead_id);
ANALYZE leads_searchgram;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TRIGGERS)
    unforce(schema_editor, "leads_lead")  # every tenant's leads, as the owner
    schema_editor.execute(BACKFILL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(UNTRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0005_outlet"),
        ("leads", "0012_link_tables_tenant"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchGram",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "tenant_id",
                        "gram",
                        "lead_id",
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
                    "lead",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="leads.lead",
                    ),
                ),
                ("gram", models.CharField(db_collation="C", max_length=5)),
            ],
            options={"verbose_name": "search gram", "db_table": "leads_searchgram"},
        ),
        migrations.RunPython(forward, backward),
    ]
