"""The time conditions' beat sweep: every minute, each active tenant's due clocks
(automation.engine.sweep_due). `manage.py automation_due` runs it by hand."""

from __future__ import annotations

from automation import engine
from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant

SWEEP_EXPIRES = 60  # seconds: a fan-out still queued when the next is due is pointless


@app.task(name="automation.due_sweep_all")
def due_sweep_all() -> int:
    """Beat, every minute: queue one due sweep per active tenant."""
    return per_active_tenant(due_sweep, expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="automation.due_sweep", round_robin=True)
def due_sweep(tenant_id: int) -> int:
    return engine.sweep_due()
