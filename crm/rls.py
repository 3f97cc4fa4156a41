"""Fence 2: PostgreSQL row-level security on every tenant-related table.

Installed after every `migrate` (post_migrate, on the owner connection), so a table added
by a later app gets its policy without anyone remembering to write one. Policed: every
table with a `tenant` foreign key (TenantOwned models, Membership) and every auto-created
many-to-many link table whose rows belong to a tenant-related model (their `tenant_id`
column is added by a migration: `through_tenant_sql`). tests/isolation/test_rls.py checks
each has the forced policy.

There is no bypass setting: the policy reads `app.tenant_id` and nothing else. The
platform's cross-tenant work runs as the `platform` role (BYPASSRLS, crm/tenancy.py
all_tenants_context); the two lookups made before any tenant is known go through
SECURITY DEFINER functions that return one narrow answer (`DEFINER_FUNCTIONS`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connections

POLICY = "tenant_isolation"
# The owner's read of a table that a SECURITY DEFINER function (owned by the owner) needs.
DEFINER_POLICY = "definer_lookup"

# '' after commit, NULL before any set_config: both mean "no tenant" and match nothing.
# The sub-select is evaluated once per statement (an initplan), not once per row.
PREDICATE = "(tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint))"


def _is_tenant_related(model) -> bool:
    from crm.models import Tenant

    try:
        field = model._meta.get_field("tenant")
    except Exception:
        return False
    return bool(getattr(field, "remote_field", None)) and field.related_model is Tenant


def tenant_owned_models() -> list[type]:
    """The concrete TenantOwned models (both fences, a public id unique per tenant)."""
    from crm.models import TenantOwned

    return [
        m
        for m in apps.get_models()
        if issubclass(m, TenantOwned) and m._meta.managed and not m._meta.proxy
    ]


def tenant_related_models() -> list[type]:
    """Every concrete model with a `tenant` foreign key: TenantOwned ones and Membership."""
    return [
        m
        for m in apps.get_models()
        if m._meta.managed and not m._meta.proxy and _is_tenant_related(m)
    ]


def tenant_link_models() -> list[type]:
    """The auto-created many-to-many tables whose rows belong to a tenant-related model."""
    links = []
    for m in apps.get_models(include_auto_created=True):
        if not m._meta.auto_created:
            continue
        targets = [f.related_model for f in m._meta.fields if f.is_relation]
        if any(_is_tenant_related(t) for t in targets):
            links.append(m)
    return links


def policed_tables() -> list[str]:
    return [m._meta.db_table for m in [*tenant_related_models(), *tenant_link_models()]]


def policy_sql(table: str) -> list[str]:
    q = connections["default"].ops.quote_name(table)
    return [
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {q}",
        f"CREATE POLICY {POLICY} ON {q} USING {PREDICATE} WITH CHECK {PREDICATE}",
    ]


# --- Link tables: their tenant column --------------------------------------------------------


def through_tenant_sql(table: str, source: tuple[str, str], target: tuple[str, str]) -> list[str]:
    """Give a many-to-many link table a NOT NULL `tenant_id`, filled from the owning row.

    `source` and `target` are (column, referenced table), e.g. ("lead_id", "leads_lead").
    A BEFORE trigger sets `tenant_id` from the source row on every insert (Django's
    `.add()`, `.set()` and the admin write only the two ids) and refuses a target of
    another tenant; it runs as the caller, so row-level security hides a foreign source
    row and the insert fails. For a migration, as the owner: run `unforce()` on the
    source table first where the owner is no superuser.
    """
    (src_col, src_table), (dst_col, dst_table) = source, target
    fn = f"{table}_tenant"
    return [
        f"ALTER TABLE {table} ADD COLUMN tenant_id bigint",
        f"UPDATE {table} l SET tenant_id = s.tenant_id"  # noqa: S608 — names from a migration
        f" FROM {src_table} s WHERE s.id = l.{src_col}",
        f"ALTER TABLE {table} ALTER COLUMN tenant_id SET NOT NULL",
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_tenant_fk FOREIGN KEY (tenant_id)"
        " REFERENCES crm_tenant (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
        f"CREATE INDEX {table}_tenant ON {table} (tenant_id, {src_col})",
        f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.tenant_id := (SELECT s.tenant_id FROM {src_table} s WHERE s.id = NEW.{src_col});
  IF NEW.tenant_id IS NULL OR NOT EXISTS (
    SELECT 1 FROM {dst_table} d WHERE d.id = NEW.{dst_col} AND d.tenant_id = NEW.tenant_id
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = '{table}: '
      || coalesce(NEW.{src_col}::text, 'NULL') || ' and '
      || coalesce(NEW.{dst_col}::text, 'NULL') || ' are not of one visible tenant';
  END IF;
  RETURN NEW;
END $$""",  # noqa: S608 — names from a migration
        f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION {fn}()",
    ]


def through_tenant_reverse_sql(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_tenant ON {table}",
        f"DROP FUNCTION IF EXISTS {table}_tenant()",
        f"DROP POLICY IF EXISTS {POLICY} ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DROP COLUMN tenant_id",
    ]


def unforce(schema_editor, *tables: str) -> None:
    """In a data migration (as the owner): let the owner read and write every tenant's rows
    of `tables` for the rest of the migration. The next post_migrate forces them again."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        exists = f"SELECT to_regclass('{table}') IS NOT NULL"
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(exists)
            if cursor.fetchone()[0]:
                schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")


# --- The narrow cross-tenant reads: SECURITY DEFINER functions -------------------------------


@dataclass(frozen=True)
class DefinerFunction:
    """A SQL function owned by the owner, run with its rights, callable by the app role.

    It must answer one narrow question (one user's seats, one key's channel), never a
    table. `reads` are the tables it reads across tenants: the owner gets a SELECT-only
    policy on them (FORCE ROW LEVEL SECURITY binds the owner too).
    """

    signature: str  # name(argument types)
    returns: str
    body: str  # SQL, with $1… for the arguments
    reads: tuple[str, ...]


DEFINER_FUNCTIONS: list[DefinerFunction] = [
    DefinerFunction(
        # The middleware's list of a user's seats (the tenant switcher), before a tenant
        # is set: crm.models.memberships_of().
        signature="crm_memberships_of(bigint)",
        returns="SETOF crm_membership",
        body="SELECT * FROM public.crm_membership WHERE user_id = $1",
        reads=("crm_membership",),
    ),
]


def register_definer(function: DefinerFunction) -> None:
    """For an app's own lookup (leads: channel key → tenant), from its AppConfig.ready()."""
    if function.signature not in {f.signature for f in DEFINER_FUNCTIONS}:
        DEFINER_FUNCTIONS.append(function)


def definer_sql(function: DefinerFunction, app_role: str | None) -> list[str]:
    name = function.signature
    statements = [
        f"CREATE OR REPLACE FUNCTION {name} RETURNS {function.returns} LANGUAGE sql STABLE"
        f" SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$ {function.body} $fn$",
        f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC",
    ]
    if app_role:
        statements.append(f"GRANT EXECUTE ON FUNCTION {name} TO {app_role}")
    for table in function.reads:
        statements += [
            f"DROP POLICY IF EXISTS {DEFINER_POLICY} ON {table}",
            f"CREATE POLICY {DEFINER_POLICY} ON {table} FOR SELECT TO CURRENT_USER USING (true)",
        ]
    return statements


# --- Roles -----------------------------------------------------------------------------------


def app_role() -> str | None:
    """The role the application connects as, when it is distinct from the owner."""
    if "owner" not in settings.DATABASES:
        return None
    user = settings.DATABASES["default"].get("USER")
    if not user or user == settings.DATABASES["owner"].get("USER"):
        return None
    return user


def platform_role() -> str | None:
    """The BYPASSRLS role of the `platform` alias, when it is distinct from the others."""
    user = settings.DATABASES.get("platform", {}).get("USER")
    others = {
        settings.DATABASES[a].get("USER") for a in ("default", "owner") if a in settings.DATABASES
    }
    if not user or user in others:
        return None
    return user


def _missing_tenant_column(connection, tables: list[str]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'"
            " AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
            " AND a.attname = 'tenant_id' AND NOT a.attisdropped)",
            [tables],
        )
        return sorted(row[0] for row in cursor.fetchall())


def install(using: str) -> None:
    """Enable RLS, create the definer functions and grant the roles their rights.
    Idempotent; runs as the tables' owner."""
    connection = connections[using]
    if "owner" in settings.DATABASES and using != "owner":
        return  # e.g. `flush` as the app role: it cannot alter tables, and need not.
    links = [m._meta.db_table for m in tenant_link_models()]
    missing = _missing_tenant_column(connection, links)
    if missing:
        # Migrated only part-way (or a new many-to-many without its migration, which the
        # isolation suite fails on): those tables cannot take the policy yet.
        warnings.warn(
            f"many-to-many tables without a tenant_id column: {', '.join(missing)}. Add it "
            "in a migration with crm.rls.through_tenant_sql (see leads/migrations/0012).",
            stacklevel=2,
        )
    # A model whose table a backward migration has just dropped (`migrate app 0012`)
    # is still among the models: only the tables that exist take the policy.
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
    statements: list[str] = []
    for table in policed_tables():
        if table not in missing and table in existing:
            statements += policy_sql(table)
    role, platform = app_role(), platform_role()
    quoted = [connection.ops.quote_name(r) for r in (role, platform) if r]
    for function in DEFINER_FUNCTIONS:
        statements += definer_sql(function, quoted[0] if role else None)
    for r in quoted:
        statements += [
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def on_post_migrate(sender, using="default", **kwargs) -> None:
    install(using)
