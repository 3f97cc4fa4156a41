"""The customer search's gram table (customers.models.CustomerSearchGram), as the lead
search's (leads 0013): the function giving a name's grams and the triggers that keep the
table (crm.search.GramTable); existing customers get their grams here, as the owner."""

import django.db.models.deletion
from django.db import migrations, models

from crm.search import GramTable

GRAMS = GramTable(
    table="customers_searchgram",
    source="customers_customer",
    key="customer_id",
    function="customers_search_grams",
    parameters="name text",
    # The grams of one name: keep crm.search.text_grams in step with it.
    body="SELECT DISTINCT substr(lower(name), i, 2) FROM generate_series(1, length(name)) AS i",
    columns=("name",),
)


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
        migrations.RunPython(GRAMS.forward, GRAMS.backward),
    ]
