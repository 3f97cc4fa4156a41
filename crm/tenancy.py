"""The tenant fences in Python: the current tenant, the scoped manager, the tenant transaction.

Fence 1 is the default manager of every tenant-owned model: its queries filter by the
tenant in `_current` and raise `NoTenantError` when none is set, so a forgotten scope fails
loudly instead of returning every tenant's rows. Fence 2 is PostgreSQL row-level security keyed on
the transaction-local setting `app.tenant_id` that `tenant_context()` sets (see crm/rls.py).

No setting opens every tenant: platform-wide work (`all_tenants_context()`) runs on the
`platform` database alias, a separate role with BYPASSRLS (PlatformRouter below), and only
the allow-listed callers in PLATFORM_CALLERS enter it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, models, transaction

# A crm.models.Tenant. That model is built on this module's manager, so this module never
# imports it: a tenant here is a saved model instance, read for its `pk`.
_Tenant = models.Model


class NoTenantError(RuntimeError):
    """A tenant-owned table was queried with no tenant set."""


class _AllTenants:
    """Marker for platform-wide code (superuser admin, cross-tenant sweeps)."""

    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS = _AllTenants()

_current: contextvars.ContextVar[_Tenant | _AllTenants | None] = contextvars.ContextVar(
    "crm_current_tenant", default=None
)


def current_tenant() -> _Tenant | None:
    """The tenant in scope, or None (also None in all-tenants mode)."""
    value = _current.get()
    return None if value is ALL_TENANTS else value


def _apply(using: str, value: _Tenant | _AllTenants | None) -> None:
    """Set the transaction-local RLS setting for `value` on connection `using`."""
    connection = connections[using]
    tenant_id = "" if value is None or value is ALL_TENANTS else str(value.pk)
    with connection.cursor() as cursor:
        # is_local=true: the value dies with the transaction, so a pooled or persistent
        # connection can never carry tenant A into the next request.
        cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [tenant_id])


@contextmanager
def _scope(value: _Tenant, *, using: str) -> Iterator[None]:
    outer = _current.get()
    nested = transaction.get_connection(using).in_atomic_block
    token = _current.set(value)
    try:
        with transaction.atomic(using=using):
            _apply(using, value)
            yield
            if nested and not transaction.get_connection(using).needs_rollback:
                # A savepoint release keeps our setting: hand the outer scope its own back.
                # (On an exception, or a block marked for rollback — a request that failed
                # inside a test's transaction — the savepoint rollback restores it itself.)
                _apply(using, outer)
    finally:
        _current.reset(token)


def tenant_context(tenant: _Tenant, *, using: str = "default"):
    """Run a block as `tenant`: scoped managers and RLS both see only its rows.

    Opens (or joins) a transaction, because the RLS setting is transaction-local.
    """
    if tenant is None or getattr(tenant, "pk", None) is None:
        raise NoTenantError("tenant_context() needs a saved Tenant")
    return _scope(tenant, using=using)


# The allow-list: the only code that may enter all_tenants_context() (module.function).
# tests/isolation/test_rls.py fails when a call appears anywhere else.
PLATFORM_CALLERS = frozenset(
    {
        "crm.middleware.TenantMiddleware.__call__",  # the platform superuser's /admin/
        "crm.notify.claim_due_deliveries",  # the delivery sweep: ids only
        "crm.events.stale_tenants",  # the business events' re-drive: tenant ids only
        "automation.engine.due_tenants",  # the time conditions' fan-out: tenant ids only
        "automation.webhooks.calls_due_tenants",  # the webhook calls' fan-out: tenant ids only
        "leads.intake.services.stale_inbound_events",  # the intake re-drive sweep: ids only
        "leads.assignment.sla.sla_due_tenants",  # the SLA fan-out: tenant ids only
        "leads.reports.rollups.due_tenants",  # the roll-up fan-out: tenant ids only
        "service_feedback.alerts.due_tenants",  # the quality alerts' fan-out: tenant ids only
    }
)
PLATFORM = "platform"


@contextmanager
def all_tenants_context() -> Iterator[None]:
    """Run a block across all tenants, on the `platform` alias (the BYPASSRLS role).

    Only for the platform superuser's admin and for platform jobs that read ids and then
    enter each tenant's own context; never for a tenant's request. Every ORM query inside
    goes to the platform connection (PlatformRouter); raw SQL on `connection` still runs
    as the app role with no tenant and sees nothing.
    """
    token = _current.set(ALL_TENANTS)
    try:
        with transaction.atomic(using=PLATFORM):
            yield
    finally:
        _current.reset(token)


class PlatformRouter:
    """ORM queries inside all_tenants_context() go to the platform alias; everything else
    to the default (app role) connection, even an object that was read on the platform."""

    def _route(self, model, **hints):
        if _current.get() is ALL_TENANTS:
            return PLATFORM
        instance = hints.get("instance")
        if instance is not None and instance._state.db == PLATFORM:
            return "default"
        return None

    db_for_read = _route
    db_for_write = _route

    def allow_relation(self, obj1, obj2, **hints):
        # One database, three roles: an object read as one role may point at another's.
        same = {"default", "owner", PLATFORM, "reports"}
        if obj1._state.db in same and obj2._state.db in same:
            return True
        return None

    def allow_migrate(self, db, app_label, **hints):
        # The owner migrates; `flush` on the platform alias (tests) leaves tables alone.
        # A reports replica follows the primary by streaming replication.
        return False if db in (PLATFORM, "reports") else None


@models.ForeignKey.register_lookup
class CurrentTenant(models.Lookup):
    """`tenant__current_tenant=True`: the tenant in scope *when the SQL is compiled*.

    Compiling late, not when the queryset is built, lets module-level querysets (a form
    field's choices, built at import) exist with no tenant and still be scoped, and
    refused, at the moment they run, which is also when RLS applies.
    """

    lookup_name = "current_tenant"

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        value = _current.get()
        if value is None:
            model = compiler.query.model.__name__ if compiler.query.model else "a tenant table"
            raise NoTenantError(
                f"{model} queried with no tenant set: wrap the code in tenant_context(tenant) "
                "(requests and TenantTask do this for you)."
            )
        if value is ALL_TENANTS:
            return f"{lhs} IS NOT NULL", params
        return f"{lhs} = %s", [*params, value.pk]


class TenantQuerySet(models.QuerySet):
    """Base for the QuerySets of tenant-owned models (reads as named methods live there)."""


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of tenant-owned models: the current tenant's rows, or an error.

    A model with its own reads: `objects = TenantManager.from_queryset(LeadQuerySet)()`
    where `LeadQuerySet(TenantQuerySet)`; the scoping stays in `get_queryset()`.
    """

    def get_queryset(self):
        return super().get_queryset().filter(tenant__current_tenant=True)


def advisory_lock(*parts: object, using: str = "default") -> None:
    """Serialise concurrent writers on one key until the transaction ends (PostgreSQL's
    transaction advisory lock)."""
    connection = connections[using]
    key = ":".join(str(p) for p in parts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def tenant_today(now=None):
    """Today (or `now`'s day) in the current tenant's time zone."""
    from django.utils import timezone

    tenant = current_tenant()  # a Tenant, or None (no tenant, or all tenants)
    if tenant is None:
        raise NoTenantError("tenant_today() runs inside one tenant")
    return timezone.localtime(now or timezone.now(), tenant.tzinfo).date()
