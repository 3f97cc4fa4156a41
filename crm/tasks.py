"""The kernel's Celery tasks (found by autodiscovery): the heartbeat, the notification
deliveries, the background exports and the weekly diagnoses, which are defined in
crm.notify, crm.exports and crm.process next to the code they run."""

from django.utils import timezone

from crm.celery import app
from crm.exports import exports_cleanup, exports_cleanup_all, run_export
from crm.models import Heartbeat
from crm.notify import deliver, deliver_due
from crm.process import weekly_diagnosis, weekly_diagnosis_all

__all__ = [
    "deliver",
    "deliver_due",
    "exports_cleanup",
    "exports_cleanup_all",
    "heartbeat",
    "run_export",
    "weekly_diagnosis",
    "weekly_diagnosis_all",
]


@app.task(name="crm.heartbeat")
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its last run proves both are alive (/healthz)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_seen": timezone.now()})
