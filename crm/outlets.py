"""What a tenant admin does to a notification outlet besides editing it (crm.notify_admin's
actions): send it a test message, close its circuit. Each is audited here (crm.services)."""

from __future__ import annotations

from django.db import transaction

from crm.audit import audit
from crm.models import CircuitState, Membership, Outlet, Tenant
from crm.notify import close_circuit, send_test
from crm.services import actor_user, check_tenant


def outlet_send_test(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    outlet: Outlet,
    to: str = "",
    mentions=(),
) -> tuple[bool, str]:
    """Send a test message on `outlet` now (crm.notify.send_test) and audit the outcome.
    Returns (ok, error)."""
    check_tenant(tenant, acting_member, outlet)
    with transaction.atomic():
        ok, error = send_test(outlet, to=to, mentions=mentions)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="notify.test",
            obj=outlet,
            changes={"ok": [None, ok]},
        )
    return ok, error


def outlet_close_circuit(
    *, tenant: Tenant, acting_member: Membership | None, outlet: Outlet
) -> int:
    """Deliver on `outlet` again now (crm.notify.close_circuit), audited. Returns the held
    deliveries released."""
    check_tenant(tenant, acting_member, outlet)
    with transaction.atomic():
        state = outlet.state
        released = close_circuit(outlet)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="notify.close_circuit",
            obj=outlet,
            changes={"state": [state, CircuitState.CLOSED]},
        )
    return released
