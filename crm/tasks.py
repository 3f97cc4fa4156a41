from django.utils import timezone

from crm.celery import app
from crm.models import Heartbeat


@app.task(name="crm.heartbeat")
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its last run proves both are alive (/healthz)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_seen": timezone.now()})
