"""The kernel's Celery tasks (found by autodiscovery): the heartbeat, the water levels'
nightly run, the notification deliveries, the background exports, the nightly metric
check, the weekly diagnoses, the business events' drain and the logs' retention, which are
defined in crm.notify, crm.exports, crm.metric_checks, crm.process, crm.events and
crm.log_retention next to the code they run."""

from django.utils import timezone

from crm import levels
from crm.celery import TenantTask, app
from crm.events import events_process, events_redrive
from crm.exports import exports_cleanup, exports_cleanup_all, run_export
from crm.jobs import per_active_tenant
from crm.log_retention import log_retention, log_retention_all
from crm.metric_checks import check_metrics, check_metrics_all
from crm.models import Heartbeat
from crm.notify import deliver, deliver_due
from crm.process import weekly_diagnosis, weekly_diagnosis_all

__all__ = [
    "check_metrics",
    "check_metrics_all",
    "deliver",
    "deliver_due",
    "events_process",
    "events_redrive",
    "exports_cleanup",
    "exports_cleanup_all",
    "heartbeat",
    "levels_record",
    "levels_record_all",
    "log_retention",
    "log_retention_all",
    "run_export",
    "weekly_diagnosis",
    "weekly_diagnosis_all",
]


@app.task(name="crm.heartbeat")
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: its last run proves both are alive (/healthz)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"last_seen": timezone.now()})


@app.task(name="crm.levels_record_all")
def levels_record_all() -> int:
    """Beat, hourly: queue each active tenant's water-level run."""
    return per_active_tenant(levels_record, expires=levels.NIGHTLY_EXPIRES)


@app.task(base=TenantTask, name="crm.levels_record", round_robin=True)
def levels_record(tenant_id: int) -> list[dict] | None:
    """One tenant's water levels of the days not recorded yet, when due (`levels.nightly`)."""
    from crm.tenancy import current_tenant

    done = levels.nightly(current_tenant())
    if done is None:
        return None
    return [{"day": r.day.isoformat(), "anomalies": r.anomalies, "told": r.told} for r in done]
