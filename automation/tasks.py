"""The time conditions' beat sweep: every minute, the due clocks
(automation.engine.sweep_due) and the webhook calls due (automation.webhooks.send_due)
of each active tenant that has some: one platform statement each lists those tenants
(`engine.due_tenants`, `webhooks.calls_due_tenants`). `manage.py automation_due` runs the
clocks by hand."""

from __future__ import annotations

from automation import engine
from automation.webhooks import calls_due_tenants, webhooks_send
from crm.celery import TenantTask, app
from crm.jobs import per_tenant

SWEEP_EXPIRES = 60  # seconds: a fan-out still queued when the next is due is pointless


@app.task(name="automation.due_sweep_all")
def due_sweep_all() -> int:
    """Beat, every minute: queue a webhook sender for each active tenant with a call due,
    and a due sweep for each active tenant with a clock due (the others have nothing to
    do and get no message). How many due sweeps were queued."""
    per_tenant(webhooks_send, calls_due_tenants(), expires=SWEEP_EXPIRES)  # automation.webhooks
    return per_tenant(due_sweep, engine.due_tenants(), expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="automation.due_sweep", round_robin=True)
def due_sweep(tenant_id: int) -> int:
    return engine.sweep_due()
