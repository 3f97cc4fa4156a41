"""The pipeline's nightly jobs (F26): the stage calibration, the month's frozen forecast
and the last month's accuracy, per tenant in its own time zone.

Beat runs `opportunities.pipeline_nightly_all` every hour (settings.CRM_PERIODIC_TASKS);
it queues `opportunities.pipeline_nightly` for each active tenant. A tenant's run does its
work once a day, at the first hourly run from NIGHTLY_HOUR (02:00) of its local day on:
the calibration's `computed_at` says whether today's is done, so a run that comes again
(the next hour, a redelivered message) does nothing, and a night the job missed is made up
at the next run. `manage.py recompute_pipeline` does the same work on demand.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max
from django.utils import timezone

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant
from crm.models import Tenant

# The tenant's local hour from which the day's run does its work.
NIGHTLY_HOUR = 2
# A fan-out still queued when the next hour's is due is pointless: it expires unrun.
NIGHTLY_EXPIRES = 3600  # seconds


def recompute(tenant: Tenant, *, now: datetime | None = None, freeze_any_day: bool = True) -> dict:
    """Calibrate the tenant's stages, freeze this month's forecast (when it has no rows:
    on any day with `freeze_any_day`, else only on the month's first day) and close every
    frozen month that has ended. Inside `tenant_context(tenant)`. Returns what it did."""
    from opportunities import calibration, forecast
    from opportunities.models import Stage

    now = now or timezone.now()
    today = forecast.local_today(tenant, now)
    if not Stage.objects.filter(tenant=tenant).exists():
        return {"tenant": tenant.slug, "skipped": "no pipeline"}
    result = calibration.recalibrate(tenant, today, now=now)
    month = forecast.first_of_month(today)
    frozen = 0
    if freeze_any_day or today.day == 1:
        frozen = forecast.freeze(tenant, month, now=now)
    closed = forecast.close_ended(tenant, today, now=now)
    return {
        "tenant": tenant.slug,
        "today": today.isoformat(),
        "calibrated_stages": result.calibrated,
        "stages": result.stages,
        "probabilities_refreshed": result.refreshed,
        "frozen_rows": frozen,
        "months_closed": [m.isoformat() for m in closed],
    }


def nightly(tenant: Tenant, *, now: datetime | None = None) -> dict | None:
    """The hourly run for one tenant: the day's work if it is NIGHTLY_HOUR or later in the
    tenant's time zone and it has not been done today; else None."""
    from opportunities.models import StageCalibration

    now = now or timezone.now()
    local = timezone.localtime(now, timezone=tenant.tzinfo)
    if local.hour < NIGHTLY_HOUR:
        return None
    last = StageCalibration.objects.filter(tenant=tenant).aggregate(last=Max("computed_at"))
    if last["last"] is not None and (
        timezone.localdate(last["last"], timezone=tenant.tzinfo) >= local.date()
    ):
        return None
    return recompute(tenant, now=now, freeze_any_day=False)


@app.task(name="opportunities.pipeline_nightly_all")
def pipeline_nightly_all() -> int:
    """Beat, hourly: queue each active tenant's nightly pipeline run."""
    return per_active_tenant(pipeline_nightly, expires=NIGHTLY_EXPIRES)


@app.task(base=TenantTask, name="opportunities.pipeline_nightly", round_robin=True)
def pipeline_nightly(tenant_id: int) -> dict | None:
    """One tenant's calibration, frozen forecast and accuracy, when due (`nightly`)."""
    from crm.tenancy import current_tenant

    return nightly(current_tenant())
