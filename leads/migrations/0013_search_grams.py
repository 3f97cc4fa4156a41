"""The lead search's gram table (leads.models.search.SearchGram), the function giving a
lead's grams, and the triggers that keep the table (crm.search.GramTable); existing leads
get their grams here, as the owner. docs/decisions.md, "Lead search through a gram table"."""

import django.db.models.deletion
from django.db import migrations, models

from crm.search import GramTable

GRAMS = GramTable(
    table="leads_searchgram",
    source="leads_lead",
    key="lead_id",
    function="leads_search_grams",
    parameters="company text, contact text, phone text",
    # The grams of one lead: keep crm.search.text_grams and leads.search.phone_grams
    # (PHONE_GRAM) in step with it.
    body=r"""
  SELECT DISTINCT g FROM (
    SELECT substr(f, i, 2) AS g
    FROM unnest(ARRAY[lower(company), lower(contact)]) AS f, generate_series(1, length(f)) AS i
    UNION ALL
    SELECT '#' || substr(d, i, 3)
    FROM regexp_replace(phone, '\D', '', 'g') AS d, generate_series(1, length(d) - 2) AS i
  ) grams
""",
    columns=("company", "contact_name", "phone"),
)


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
        migrations.RunPython(GRAMS.forward, GRAMS.backward),
    ]
