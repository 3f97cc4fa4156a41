"""The time conditions' beat sweep: every minute, each active tenant's due clocks
(automation.engine.sweep_due) and its webhook calls due (automation.webhooks.send_due).
`manage.py automation_due` runs the clocks by hand."""

from __future__ import annotations

import logging

from automation import engine, webhooks
from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant

SWEEP_EXPIRES = 60  # seconds: a fan-out still queued when the next is due is pointless


@app.task(name="automation.due_sweep_all")
def due_sweep_all() -> int:
    """Beat, every minute: queue one due sweep and one webhook sender per active tenant."""
    per_active_tenant(webhooks_send, expires=SWEEP_EXPIRES)
    return per_active_tenant(due_sweep, expires=SWEEP_EXPIRES)


@app.task(base=TenantTask, name="automation.due_sweep")
def due_sweep(tenant_id: int) -> int:
    return engine.sweep_due()


@app.task(name="automation.webhooks_send")
def webhooks_send(tenant_id: int) -> int:
    """Send the tenant's due webhook calls, each posted outside any transaction (so not a
    TenantTask, whose transaction would span the HTTP calls). A tenant gone or inactive
    ends it quietly."""
    from crm.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logging.getLogger(__name__).warning("webhook calls of tenant %s skipped", tenant_id)
        return 0
    return webhooks.send_due(tenant)
