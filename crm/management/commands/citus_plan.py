"""Print the SQL that distributes this database with Citus (docs/scaling.md):

    python manage.py citus_plan > distribute.sql

The global tables become reference tables, the tenant tables are distributed by
`tenant_id` and colocated, each after the tenant tables it references. Read from the
migrated database's catalog (crm.keys.citus_statements); it changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connections

from crm.keys import citus_statements


class Command(BaseCommand):
    help = "Print the Citus statements (reference and distributed tables) for this database."

    def handle(self, *args, **options):
        for statement in citus_statements(connections["default"]):
            self.stdout.write(statement)
