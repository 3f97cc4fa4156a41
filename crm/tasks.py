from django.utils import timezone

from crm import notify
from crm.celery import TenantTask, app
from crm.models import Heartbeat


@app.task(name="crm.heartbeat")
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its last run proves both are alive (/healthz)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_seen": timezone.now()})


@app.task(base=TenantTask, name="crm.deliver")
def deliver(tenant_id: int, delivery_id: int) -> str | None:
    """Send one notification delivery (claimed exclusively; retries and circuit included)."""
    return notify.deliver_one(delivery_id)


@app.task(name="crm.deliver_due")
def deliver_due() -> int:
    """Beat, every 30 s: queue the retries that are due, lost messages and circuit probes."""
    due = notify.claim_due_deliveries()
    for tenant_id, delivery_id in due:
        deliver.delay(tenant_id, delivery_id)
    return len(due)
