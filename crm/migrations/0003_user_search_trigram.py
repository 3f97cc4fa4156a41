"""Trigram indexes so that member search (icontains on names) does not scan every user.

Django's icontains on PostgreSQL is `UPPER(col::text) LIKE UPPER('%term%')`; the GIN
trigram indexes below are on exactly those expressions. auth_user is shared by all
tenants, so without them a search reads every user of every tenant. PostgreSQL only;
pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner may create it.
"""

from django.db import migrations

COLUMNS = ["username", "first_name", "last_name"]


def forwards(apps, schema_editor):
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS crm_user_{column}_trgm ON auth_user "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS crm_user_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_membership_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
