"""The kernel's Celery tasks (found by autodiscovery): the heartbeat, and the notification
deliveries, which are defined in crm.notify next to the code that queues them."""

from django.utils import timezone

from crm.celery import app
from crm.models import Heartbeat
from crm.notify import deliver, deliver_due

__all__ = ["deliver", "deliver_due", "heartbeat"]


@app.task(name="crm.heartbeat")
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its last run proves both are alive (/healthz)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_seen": timezone.now()})
