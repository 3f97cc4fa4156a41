"""Create the database, the app role that row-level security applies to, and the platform
role that bypasses it (DATABASE_PLATFORM_URL, default `crm_platform` with DATABASE_URL's
password: see crm/dbroles.py).

Run with DATABASE_OWNER_URL pointing at a role that may create roles and databases (the
`postgres` superuser locally and in docker-compose; in production a DBA can run the printed
SQL instead: `--print-sql`). DATABASE_URL names the app role: it gets LOGIN and DML rights
only — not superuser, not BYPASSRLS, not the tables' owner — so RLS binds it.
Idempotent: safe to run on every deploy. The work is done by crm.dbroles, which the
embedded stack also uses for its own server.
"""

from __future__ import annotations

import environ
from django.core.management.base import BaseCommand, CommandError

from crm.dbroles import DbUrl, RoleSetupError, ensure_roles, platform_url, printable


class Command(BaseCommand):
    help = (
        "Create the PostgreSQL database, the non-owner app role and the platform role "
        "(see docs/operations.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-sql", action="store_true", help="Print the statements instead of running them."
        )

    def handle(self, *args, print_sql: bool = False, **options):
        env = environ.Env()
        app_url = env.str("DATABASE_URL", default="")
        owner_url = env.str("DATABASE_OWNER_URL", default="")
        platform = env.str("DATABASE_PLATFORM_URL", default="") or None
        try:
            if print_sql:
                for line in printable(app_url, owner_url, platform):
                    self.stdout.write(line)
                return
            app, owner = ensure_roles(app_url, owner_url, platform)
            plat = DbUrl.parse(platform_url(app_url, platform))
        except RoleSetupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"database {app.name!r} ready; app role {app.user!r} (no superuser, no "
                f"BYPASSRLS, not owner); platform role {plat.user!r} (BYPASSRLS, for the "
                f"allow-listed platform jobs only); tables owned by {owner.user!r}"
            )
        )
