"""The database and its three roles (no Django needed).

The owner role (DATABASE_OWNER_URL) owns the tables and runs migrations; the app role
(DATABASE_URL) gets LOGIN and, after `migrate`, DML rights only: not superuser, not
BYPASSRLS, not the owner, so RLS binds it. The platform role (DATABASE_PLATFORM_URL,
default: DATABASE_URL's server, database and password with the role `crm_platform`) gets
LOGIN, BYPASSRLS and the same DML rights: the `platform` database alias that only the
allow-listed platform-wide code uses (crm/tenancy.py all_tenants_context). Used by
`manage.py setup_roles` and by the embedded stack (crm/embedded.py) when it creates its
server. Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

PLATFORM_ROLE = "crm_platform"


def platform_url(app_url: str, explicit: str | None = None) -> str:
    """DATABASE_PLATFORM_URL, or when unset DATABASE_URL with the role `crm_platform`
    (same server, database and password)."""
    if explicit:
        return explicit
    if not app_url:
        return ""
    parts = urlsplit(app_url)
    password = f":{quote(unquote(parts.password), safe='')}" if parts.password else ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{PLATFORM_ROLE}{password}@{host}"))


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


def role_statements(
    app_url: str, owner_url: str, platform: str | None = None
) -> tuple[list, list, DbUrl, DbUrl]:
    """(server statements, database statements, app, owner) that make the app and platform
    roles and the database exist as they should. Reads the server's catalogue, changes
    nothing. `platform` is DATABASE_PLATFORM_URL (None: derived from `app_url`)."""
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
    plat = DbUrl.parse(platform_url(app_url, platform))
    if plat.user in (app.user, owner.user):
        raise RoleSetupError(
            f"DATABASE_PLATFORM_URL uses the role {plat.user!r}: the platform role must be "
            "a third role, apart from the app role and the owner."
        )
    if plat.name != app.name:
        raise RoleSetupError("DATABASE_URL and DATABASE_PLATFORM_URL name different databases.")
    role = sql.Identifier(app.user)
    try:
        conn = psycopg.connect(**owner.conninfo("postgres"), autocommit=True)
    except psycopg.Error as exc:
        raise RoleSetupError(f"cannot connect as the owner role: {exc}") from exc
    server = []
    with conn:
        for url, bypass in ((app, "NOBYPASSRLS"), (plat, "BYPASSRLS")):
            ident = sql.Identifier(url.user)
            found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [url.user])
            attrs = sql.SQL(f"LOGIN NOSUPERUSER {bypass} NOCREATEDB NOCREATEROLE")
            verb = "CREATE" if found.fetchone() is None else "ALTER"
            server.append(sql.SQL(verb + " ROLE {} {}").format(ident, attrs))
            if url.password:
                server.append(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(url.password))
                )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [app.name])
        if not exists.fetchone():
            server.append(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(app.name), sql.Identifier(owner.user)
                )
            )
    database = []
    for ident in (role, sql.Identifier(plat.user)):
        database += [
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(app.name), ident
            ),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        ]
    return server, database, app, owner


def ensure_roles(app_url: str, owner_url: str, platform: str | None = None) -> tuple[DbUrl, DbUrl]:
    """Create or correct the app and platform roles and the database; grant what they need
    to connect (their table rights come with `migrate`, crm/rls.py)."""
    server, database, app, owner = role_statements(app_url, owner_url, platform)
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


def printable(app_url: str, owner_url: str, platform: str | None = None) -> list[str]:
    """The statements as SQL text, for a DBA to run (`setup_roles --print-sql`)."""
    server, database, _app, owner = role_statements(app_url, owner_url, platform)
    with psycopg.connect(**owner.conninfo("postgres")) as conn:
        return [stmt.as_string(conn) + ";" for stmt in [*server, *database]]
