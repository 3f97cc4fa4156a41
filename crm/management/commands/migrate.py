"""`migrate` that runs as the tables' owner when DATABASE_OWNER_URL is configured.

The app role (DATABASE_URL) may read and write rows but not alter tables; migrations and
the RLS policies installed after them need the owner. `--database` still wins if given.
"""

from django.conf import settings
from django.core.management.commands.migrate import Command as MigrateCommand


class Command(MigrateCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        if "owner" in settings.DATABASES:
            parser.set_defaults(database="owner")
