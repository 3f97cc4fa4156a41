"""Service feedback's beat job: the quality alerts' sweep (service_feedback.alerts), every
15 minutes (settings.CRM_PERIODIC_TASKS) for each active tenant whose sweep would change
something (`alerts.due_tenants`, one platform statement)."""

from __future__ import annotations

from crm.celery import TenantTask, app
from crm.jobs import per_tenant

SWEEP_EXPIRES = 900  # seconds: a fan-out still queued at the next round is pointless


@app.task(name="service_feedback.alerts_sweep_all")
def alerts_sweep_all() -> int:
    """Beat: queue the quality-alert sweep of each active tenant with an alert to raise,
    feed or close (the others get no message). How many were queued."""
    from service_feedback.alerts import due_tenants

    return per_tenant(alerts_sweep, due_tenants(), expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="service_feedback.alerts_sweep", round_robin=True)
def alerts_sweep(tenant_id: int) -> dict:
    """One tenant's sweep: alerts raised for clusters over the threshold, quiet ones closed."""
    from crm.tenancy import current_tenant
    from service_feedback import alerts

    return alerts.sweep(current_tenant())
