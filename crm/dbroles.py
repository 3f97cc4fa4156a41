"""The database and the app role that row-level security applies to (no Django needed).

The owner role (DATABASE_OWNER_URL) owns the tables and runs migrations; the app role
(DATABASE_URL) gets LOGIN and, after `migrate`, DML rights only: not superuser, not
BYPASSRLS, not the owner, so RLS binds it. Used by `manage.py setup_roles` and by the
embedded stack (crm/embedded.py) when it creates its server. Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import sql


class RoleSetupError(Exception):
    """A configuration or server problem, with a message meant for the operator."""


@dataclass(frozen=True)
class DbUrl:
    user: str
    password: str | None
    host: str | None
    port: int | None
    name: str

    @classmethod
    def parse(cls, url: str) -> DbUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise RoleSetupError(f"not a postgres:// URL: {parts.scheme}://…")
        query = parse_qs(parts.query)
        host = unquote(parts.hostname or "") or (query.get("host") or [None])[0]
        return cls(
            user=unquote(parts.username or ""),
            password=unquote(parts.password) if parts.password else None,
            host=host or None,
            port=parts.port,
            name=unquote(parts.path.lstrip("/")),
        )

    def conninfo(self, dbname: str | None = None) -> dict:
        info = {
            "dbname": dbname or self.name,
            "user": self.user,
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "connect_timeout": 10,
        }
        return {k: v for k, v in info.items() if v not in (None, "")}


def role_statements(app_url: str, owner_url: str) -> tuple[list, list, DbUrl, DbUrl]:
    """(server statements, database statements, app, owner) that make the app role and the
    database exist as they should. Reads the server's catalogue, changes nothing."""
    if not app_url:
        raise RoleSetupError("DATABASE_URL is not set: it names the app role.")
    if not owner_url:
        raise RoleSetupError(
            "DATABASE_OWNER_URL is not set: it names the role that owns "
            "the tables and runs migrations."
        )
    app, owner = DbUrl.parse(app_url), DbUrl.parse(owner_url)
    if app.user == owner.user:
        raise RoleSetupError(
            "DATABASE_URL and DATABASE_OWNER_URL use the same role "
            f"({app.user!r}); row-level security needs two."
        )
    if app.name != owner.name:
        raise RoleSetupError("DATABASE_URL and DATABASE_OWNER_URL name different databases.")
    role = sql.Identifier(app.user)
    try:
        conn = psycopg.connect(**owner.conninfo("postgres"), autocommit=True)
    except psycopg.Error as exc:
        raise RoleSetupError(f"cannot connect as the owner role: {exc}") from exc
    server = []
    with conn:
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app.user]).fetchone()
        attrs = sql.SQL("LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
        verb = "CREATE" if found is None else "ALTER"
        server.append(sql.SQL(verb + " ROLE {} {}").format(role, attrs))
        if app.password:
            server.append(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(app.password))
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [app.name])
        if not exists.fetchone():
            server.append(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(app.name), sql.Identifier(owner.user)
                )
            )
    database = [
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(app.name), role
        ),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
    ]
    return server, database, app, owner


def ensure_roles(app_url: str, owner_url: str) -> tuple[DbUrl, DbUrl]:
    """Create or correct the app role and the database; grant what the app role needs."""
    server, database, app, owner = role_statements(app_url, owner_url)
    with psycopg.connect(**owner.conninfo("postgres"), autocommit=True) as conn:
        for stmt in server:
            try:
                conn.execute(stmt)
            except psycopg.Error as exc:
                raise RoleSetupError(f"{stmt.as_string(conn)}: {exc}") from exc
    with psycopg.connect(**owner.conninfo(), autocommit=True) as conn:
        for stmt in database:
            conn.execute(stmt)
    return app, owner


def printable(app_url: str, owner_url: str) -> list[str]:
    """The statements as SQL text, for a DBA to run (`setup_roles --print-sql`)."""
    server, database, _app, owner = role_statements(app_url, owner_url)
    with psycopg.connect(**owner.conninfo("postgres")) as conn:
        return [stmt.as_string(conn) + ";" for stmt in [*server, *database]]
