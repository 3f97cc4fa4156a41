"""Create the database and the app role that row-level security applies to.

Run with DATABASE_OWNER_URL pointing at a role that may create roles and databases (the
`postgres` superuser locally and in docker-compose; in production a DBA can run the printed
SQL instead: `--print-sql`). DATABASE_URL names the app role: it gets LOGIN and DML rights
only — not superuser, not BYPASSRLS, not the tables' owner — so RLS binds it.
Idempotent: safe to run on every deploy.
"""

from __future__ import annotations

import environ
import psycopg
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql


class Command(BaseCommand):
    help = "Create the PostgreSQL database and the non-owner app role (see docs/operations.md)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-sql", action="store_true", help="Print the statements instead of running them."
        )

    def handle(self, *args, print_sql: bool = False, **options):
        env = environ.Env()
        app_url = env.str("DATABASE_URL", default="")
        owner_url = env.str("DATABASE_OWNER_URL", default="")
        if not app_url.startswith(("postgres://", "postgresql://")):
            raise CommandError("DATABASE_URL must be a postgres:// URL for the app role.")
        if not owner_url:
            raise CommandError(
                "DATABASE_OWNER_URL is not set: it names the role that owns "
                "the tables and runs migrations."
            )
        app = env.db_url_config(app_url)
        owner = env.db_url_config(owner_url)
        if app["USER"] == owner["USER"]:
            raise CommandError(
                "DATABASE_URL and DATABASE_OWNER_URL use the same role "
                f"({app['USER']!r}); row-level security needs two."
            )
        if app["NAME"] != owner["NAME"]:
            raise CommandError("DATABASE_URL and DATABASE_OWNER_URL name different databases.")

        role, dbname, password = app["USER"], app["NAME"], app.get("PASSWORD") or None
        server_stmts = self._server_statements(owner, role, password, dbname, dry=print_sql)
        db_stmts = [
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(role)
            ),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)),
        ]
        if print_sql:
            with psycopg.connect(**self._conninfo(owner, "postgres")) as conn:
                for stmt in [*server_stmts, *db_stmts]:
                    self.stdout.write(stmt.as_string(conn) + ";")
            return
        with psycopg.connect(**self._conninfo(owner, dbname), autocommit=True) as conn:
            for stmt in db_stmts:
                conn.execute(stmt)
        self.stdout.write(
            self.style.SUCCESS(
                f"database {dbname!r} ready; app role {role!r} (no superuser, no BYPASSRLS, "
                f"not owner); tables owned by {owner['USER']!r}"
            )
        )

    def _server_statements(self, owner, role, password, dbname, *, dry):
        stmts = []
        try:
            conn = psycopg.connect(**self._conninfo(owner, "postgres"), autocommit=True)
        except psycopg.Error as exc:
            raise CommandError(f"cannot connect as the owner role: {exc}") from exc
        with conn:
            found = conn.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role]
            ).fetchone()
            attrs = sql.SQL("LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
            if found is None:
                stmts.append(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(role), attrs))
            else:
                stmts.append(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(role), attrs))
            if password:
                stmts.append(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [dbname]
            ).fetchone()
            if not exists:
                stmts.append(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(dbname), sql.Identifier(owner["USER"])
                    )
                )
            if not dry:
                for stmt in stmts:
                    try:
                        conn.execute(stmt)
                    except psycopg.Error as exc:
                        raise CommandError(f"{stmt.as_string(conn)}: {exc}") from exc
        return stmts

    @staticmethod
    def _conninfo(cfg, dbname):
        info = {
            "dbname": dbname,
            "user": cfg["USER"],
            "host": cfg.get("HOST") or None,
            "port": cfg.get("PORT") or None,
            "password": cfg.get("PASSWORD") or None,
            "connect_timeout": 10,
        }
        return {k: v for k, v in info.items() if v not in (None, "")}
