"""The tenant fences in Python: the current tenant, the scoped manager, the tenant transaction.

Fence 1 is the default manager of every tenant-owned model: its queries filter by the
tenant in `_current` and raise `NoTenantError` when none is set, so a forgotten scope fails
loudly instead of returning every tenant's rows. Fence 2 is PostgreSQL row-level security keyed on
the transaction-local setting `app.tenant_id` that `tenant_context()` sets (see crm/rls.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connections, models, transaction

if TYPE_CHECKING:
    from crm.models import Tenant


class NoTenantError(RuntimeError):
    """A tenant-owned table was queried with no tenant set."""


class _AllTenants:
    """Marker for platform-wide code (superuser admin, cross-tenant sweeps)."""

    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS = _AllTenants()

_current: contextvars.ContextVar[Tenant | _AllTenants | None] = contextvars.ContextVar(
    "crm_current_tenant", default=None
)


def current_tenant() -> Tenant | None:
    """The tenant in scope, or None (also None in all-tenants mode)."""
    value = _current.get()
    return None if value is ALL_TENANTS else value


def _apply(using: str, value: Tenant | _AllTenants | None) -> None:
    """Set the transaction-local RLS settings for `value` on connection `using`."""
    connection = connections[using]
    tenant_id = "" if value is None or value is ALL_TENANTS else str(value.pk)
    with connection.cursor() as cursor:
        # is_local=true: the values die with the transaction, so a pooled or persistent
        # connection can never carry tenant A into the next request.
        cursor.execute(
            "SELECT set_config('app.tenant_id', %s, true), set_config('app.all_tenants', %s, true)",
            [tenant_id, "on" if value is ALL_TENANTS else ""],
        )


@contextmanager
def _scope(value: Tenant | _AllTenants, *, using: str) -> Iterator[None]:
    outer = _current.get()
    nested = transaction.get_connection(using).in_atomic_block
    token = _current.set(value)
    try:
        with transaction.atomic(using=using):
            _apply(using, value)
            yield
            if nested:
                # A savepoint release keeps our setting: hand the outer scope its own back.
                # (On an exception the savepoint rollback restores it by itself.)
                _apply(using, outer)
    finally:
        _current.reset(token)


def tenant_context(tenant: Tenant, *, using: str = "default"):
    """Run a block as `tenant`: scoped managers and RLS both see only its rows.

    Opens (or joins) a transaction, because the RLS setting is transaction-local.
    """
    if tenant is None or getattr(tenant, "pk", None) is None:
        raise NoTenantError("tenant_context() needs a saved Tenant")
    return _scope(tenant, using=using)


def all_tenants_context(*, using: str = "default"):
    """Run a block across all tenants. Only for the platform superuser's admin and for
    platform jobs that then enter each tenant's own context; never for a tenant's request."""
    return _scope(ALL_TENANTS, using=using)


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

    from crm.models import Tenant

    tenant = current_tenant()
    if not isinstance(tenant, Tenant):
        raise NoTenantError("tenant_today() runs inside one tenant")
    return timezone.localtime(now or timezone.now(), tenant.tzinfo).date()
