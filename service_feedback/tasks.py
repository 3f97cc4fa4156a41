"""Service feedback's beat job: the quality alerts' sweep (service_feedback.alerts), every
15 minutes for each active tenant (settings.CRM_PERIODIC_TASKS)."""

from __future__ import annotations

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant

SWEEP_EXPIRES = 900  # seconds: a fan-out still queued at the next round is pointless


@app.task(name="service_feedback.alerts_sweep_all")
def alerts_sweep_all() -> int:
    """Beat: queue each active tenant's quality-alert sweep."""
    return per_active_tenant(alerts_sweep, expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="service_feedback.alerts_sweep", round_robin=True)
def alerts_sweep(tenant_id: int) -> dict:
    """One tenant's sweep: alerts raised for clusters over the threshold, quiet ones closed."""
    from crm.tenancy import current_tenant
    from service_feedback import alerts

    return alerts.sweep(current_tenant())
