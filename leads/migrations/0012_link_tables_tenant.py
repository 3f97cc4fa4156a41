"""The many-to-many link tables (lead tags, channel tags) get a tenant column and, at the
next post_migrate, the tenant policy (crm/rls.py). Existing rows take their tenant from the
lead or channel they belong to; a trigger fills it on every later insert."""

from django.db import migrations

from crm.rls import through_tenant_reverse_sql, through_tenant_sql, unforce

LINKS = [
    ("leads_lead_tags", ("lead_id", "leads_lead"), ("tag_id", "leads_tag")),
    ("leads_channel_tags", ("channel_id", "leads_channel"), ("tag_id", "leads_tag")),
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Every tenant's rows, as the owner (who is bound by FORCE ROW LEVEL SECURITY).
    unforce(schema_editor, "leads_lead", "leads_channel", "leads_tag")
    for table, source, target in LINKS:
        for statement in through_tenant_sql(table, source, target):
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _source, _target in LINKS:
        for statement in through_tenant_reverse_sql(table):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0004_notifications"),
        ("leads", "0011_tag_colour_choices"),
    ]

    operations = [migrations.RunPython(forward, backward)]
