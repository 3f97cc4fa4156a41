"""Fence 2: PostgreSQL row-level security on every tenant-owned table.

Installed after every `migrate` (post_migrate, on the owner connection), so a table added
by a later app gets its policy without anyone remembering to write one; the isolation
suite checks that each TenantOwned table has it. The app role gets plain DML grants.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import connections

POLICY = "tenant_isolation"

# '' after commit, NULL before any set_config: both mean "no tenant" and match nothing.
# app.all_tenants is set only by crm.tenancy.all_tenants_context (the superuser's admin).
_PREDICATE = (
    "(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint "
    "OR current_setting('app.all_tenants', true) = 'on')"
)


def tenant_owned_models() -> list[type]:
    from crm.models import TenantOwned

    return [
        m
        for m in apps.get_models()
        if issubclass(m, TenantOwned) and m._meta.managed and not m._meta.proxy
    ]


def policy_sql(table: str) -> list[str]:
    q = connections["default"].ops.quote_name(table)
    return [
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {q}",
        f"CREATE POLICY {POLICY} ON {q} USING {_PREDICATE} WITH CHECK {_PREDICATE}",
    ]


def app_role() -> str | None:
    """The role the application connects as, when it is distinct from the owner."""
    if "owner" not in settings.DATABASES:
        return None
    user = settings.DATABASES["default"].get("USER")
    if not user or user == settings.DATABASES["owner"].get("USER"):
        return None
    return user


def install(using: str) -> None:
    """Enable RLS and grant the app role its rights. Idempotent; runs as the tables' owner."""
    connection = connections[using]
    if "owner" in settings.DATABASES and using != "owner":
        return  # e.g. `flush` as the app role: it cannot alter tables, and need not.
    statements: list[str] = []
    for model in tenant_owned_models():
        statements += policy_sql(model._meta.db_table)
    role = app_role()
    if role:
        r = connection.ops.quote_name(role)
        statements += [
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def on_post_migrate(sender, using="default", **kwargs) -> None:
    install(using)
