"""The time conditions' beat sweep: every minute, each active tenant's due clocks
(automation.engine.sweep_due) and its webhook calls due (automation.webhooks.send_due).
`manage.py automation_due` runs the clocks by hand."""

from __future__ import annotations

from automation import engine
from automation.webhooks import webhooks_send
from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant

SWEEP_EXPIRES = 60  # seconds: a fan-out still queued when the next is due is pointless


@app.task(name="automation.due_sweep_all")
def due_sweep_all() -> int:
    """Beat, every minute: queue one due sweep and one webhook sender per active tenant."""
    per_active_tenant(webhooks_send, expires=SWEEP_EXPIRES)  # automation.webhooks
    return per_active_tenant(due_sweep, expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="automation.due_sweep", round_robin=True)
def due_sweep(tenant_id: int) -> int:
    return engine.sweep_due()
