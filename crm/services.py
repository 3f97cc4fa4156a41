"""The write contract every app's services follow (docs/architecture.md, "Writes").

A write that spans models or has side effects is one function `<entity>_<verb>(*, tenant,
acting_member, …)`: keyword arguments only; `tenant` the tenant the write belongs to,
`acting_member` the Membership acting (None when the system acts: a sweep, a webhook, the
assignment engine). It checks its input and raises ValidationError with field errors
before writing anything, then writes in one transaction with its audit row inside, and
queues tasks and notifications with `transaction.on_commit`. Views and admin pages call
services; they neither audit nor write side effects themselves.

This module holds the two checks each service starts with.
"""

from __future__ import annotations

from crm.models import Membership, Tenant
from crm.tenancy import current_tenant


class TenantMismatchError(RuntimeError):
    """A service was called for one tenant inside another tenant's context."""


def check_tenant(tenant: Tenant, *objects) -> Tenant:
    """`tenant`, after checking that it is the tenant in scope and owns every object given
    (an object of another tenant here is a programming error, never a user's)."""
    scoped = current_tenant()
    if scoped is not None and scoped.pk != tenant.pk:
        raise TenantMismatchError(f"service called for tenant {tenant.pk} inside {scoped.pk}")
    for obj in objects:
        if obj is not None and getattr(obj, "tenant_id", tenant.pk) != tenant.pk:
            raise TenantMismatchError(f"{type(obj).__name__} {obj.pk} is not of {tenant.pk}")
    return tenant


def actor_user(acting_member: Membership | None):
    """The user an audit row names for `acting_member` (None: the system)."""
    return acting_member.user if acting_member is not None else None
