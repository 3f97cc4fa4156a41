"""Customer health's nightly recompute (F33), per tenant in its own time zone.

Beat runs `health.recompute_all` every hour (settings.CRM_PERIODIC_TASKS); it queues
`health.recompute` for each active tenant. A tenant's run scores its customers once a
day, at the first hourly run from NIGHTLY_HOUR (02:00) of its local day on: the settings'
`computed_on` says whether today is done, so a run that comes again (the next hour, a
redelivered message) does nothing, and a night the job missed is made up at the next
run. `manage.py recompute_health` and the admin's "recompute now" do the same on demand.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant
from crm.models import Tenant

NIGHTLY_HOUR = 2
# Snapshots are kept day by day this long (the trend shows 90 days, the back-test 6
# months); older ones keep only the last day of each month.
DAILY_DAYS = 400
NIGHTLY_EXPIRES = 3600  # seconds: a fan-out still queued when the next is due expires


def nightly(tenant: Tenant, *, now: datetime | None = None) -> dict | None:
    """The hourly run for one tenant: today's scores if it is NIGHTLY_HOUR or later in the
    tenant's time zone and today is not scored yet; else None."""
    from health import compute
    from health.models import HealthSettings

    now = now or timezone.now()
    local = timezone.localtime(now, timezone=tenant.tzinfo)
    if local.hour < NIGHTLY_HOUR:
        return None
    settings = HealthSettings.for_tenant(tenant)
    if settings.computed_on is not None and settings.computed_on >= local.date():
        return None
    done = compute.recompute(tenant, day=local.date(), now=now, settings=settings).as_dict()
    done["pruned"] = prune(tenant, local.date())
    return done


def prune(tenant: Tenant, today) -> int:
    """Delete the tenant's snapshots older than DAILY_DAYS, except each month's last day.
    How many were deleted."""
    from datetime import timedelta

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM health_healthsnapshot WHERE tenant_id = %s AND day < %s"
            " AND day <> (date_trunc('month', day) + interval '1 month - 1 day')::date",
            [tenant.pk, today - timedelta(days=DAILY_DAYS)],
        )
        return cursor.rowcount


@app.task(name="health.recompute_all")
def recompute_all() -> int:
    """Beat, hourly: queue each active tenant's nightly health run."""
    return per_active_tenant(recompute_tenant, expires=NIGHTLY_EXPIRES)


@app.task(base=TenantTask, name="health.recompute", round_robin=True)
def recompute_tenant(tenant_id: int) -> dict | None:
    """One tenant's scores for today, when due (`nightly`)."""
    from crm.tenancy import current_tenant

    return nightly(current_tenant())
