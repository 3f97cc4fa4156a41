"""Daily roll-ups of the lead-quality report (F36), so that 90 days of a million-lead tenant
read a few thousand rows instead of aggregating half a million leads per request.

- `QualityDay` and `QualityRepDay` hold, per local day of lead creation (the tenant's time
  zone), exactly what `leads.reports.quality.tally_live` counts for that day's leads.
- PostgreSQL triggers (migration leads 0006) write a `ReportChange` mark, the UTC hour of
  the lead's creation, whenever a lead or a follow-up changes in a way the report counts:
  new, deleted, verified, reassigned, touched, re-graded, a follow-up logged or moved.
- `refresh()` (beat, every few minutes, and `manage.py lead_report_rollup`) drains the
  marks and recomputes the days they overlap.
- The report reads them (`leads.reports.quality.tally_rolled_up`) for the days
  `fresh_days()` there names: computed in the tenant's current time zone and without a
  pending mark. Every other day, today included while leads arrive, is counted live, so
  the report is always exact; the roll-ups only make it fast. This module writes them and
  the report never imports it.

A mark written by a transaction still open while `refresh()` drains is invisible to its
DELETE and so survives it: the day is recomputed on the next run (tested).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from crm.tenancy import advisory_lock
from leads.models import Lead, QualityDay, QualityRepDay, ReportDay
from leads.reports.quality import pack_seconds, range_bounds, tally_live

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)


def hour_days(hour: datetime, tz) -> set[date]:
    """The local days an hour of UTC overlaps: one, or two in a zone whose offset is not
    a whole number of hours."""
    return {
        timezone.localtime(hour, tz).date(),
        timezone.localtime(hour + HOUR - timedelta(microseconds=1), tz).date(),
    }


def recompute_day(tenant, day: date) -> None:
    """Replace `day`'s roll-ups with a live count of the leads created on it."""
    since, until = range_bounds(day, day, tenant.tzinfo)
    tally = tally_live(Lead.objects.filter(created_at__gte=since, created_at__lt=until))
    QualityDay.objects.filter(day=day).delete()
    QualityRepDay.objects.filter(day=day).delete()
    QualityDay.objects.bulk_create(
        QualityDay(
            tenant=tenant,
            day=day,
            channel_id=channel_id,
            source_grade=grade,
            invalid_reason_id=reason_id,
            **counts,
        )
        for (channel_id, grade, reason_id), counts in tally.groups.items()
    )
    QualityRepDay.objects.bulk_create(
        QualityRepDay(
            tenant=tenant,
            day=day,
            owner_id=owner_id,
            valid=rep.valid,
            followed_up=rep.followed_up,
            touched=rep.touched,
            first_touch_seconds=pack_seconds(rep.seconds),
        )
        for owner_id, rep in tally.reps.items()
    )
    ReportDay.objects.update_or_create(
        tenant=tenant,
        day=day,
        defaults={"time_zone": tenant.timezone, "computed_at": timezone.now()},
    )


def _drain(tenant) -> set[date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM leads_reportchange WHERE tenant_id = %s RETURNING hour", [tenant.pk]
        )
        hours = {row[0] for row in cursor.fetchall()}
    days: set[date] = set()
    for hour in hours:
        days |= hour_days(hour, tenant.tzinfo)
    return days


# A day covers an hour's start or end (start + 1 h − 1 µs) when the instant falls in it.
_COVERED = """
  EXISTS (
    SELECT 1 FROM leads_reportday d
    WHERE d.tenant_id = %(tenant)s AND d.time_zone = %(zone)s
      AND {instant} >= (d.day::timestamp AT TIME ZONE d.time_zone)
      AND {instant} < ((d.day + 1)::timestamp AT TIME ZONE d.time_zone)
  )
"""


def _mark_hours(tenant, *, uncovered_only: bool) -> int:
    """Write a change mark for every hour the tenant has leads in (or only for those
    whose days have no roll-up): the next drain recomputes their days. One scan of the
    tenant's creation times. Returns the number of marks."""
    where = ""
    if uncovered_only:
        start = _COVERED.format(instant="hours.hour")
        end = _COVERED.format(instant="(hours.hour + interval '1 hour' - interval '1 microsecond')")
        where = f"WHERE NOT {start} OR NOT {end}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO leads_reportchange (tenant_id, public_id, hour)
            SELECT %(tenant)s, gen_random_uuid(), hour FROM (
              SELECT DISTINCT leads_report_hour(created_at) AS hour
              FROM leads_lead WHERE tenant_id = %(tenant)s
            ) hours
            {where}
            """,  # noqa: S608 — the interpolated text is this module's constants
            {"tenant": tenant.pk, "zone": tenant.timezone},
        )
        return cursor.rowcount


def refresh(tenant, *, rebuild: bool = False) -> int:
    """Recompute the days with pending change marks; with `rebuild`, or when the tenant's
    time zone changed since, every day from scratch. Runs inside `tenant_context(tenant)`;
    one transaction, serialised per tenant. Returns the number of days recomputed."""
    with transaction.atomic():
        advisory_lock("lead-report-rollup", tenant.pk)
        if rebuild or ReportDay.objects.exclude(time_zone=tenant.timezone).exists():
            ReportDay.objects.all().delete()
            QualityDay.objects.all().delete()
            QualityRepDay.objects.all().delete()
            _mark_hours(tenant, uncovered_only=False)
        days = _drain(tenant)
        for day in sorted(days):
            recompute_day(tenant, day)
    return len(days)


def due_tenants() -> list[int]:
    """The active tenants with change marks pending, or whose roll-ups are in another
    time zone than the tenant's now (what `refresh` would recompute), in id order. A
    platform job that reads tenant ids only; each refresh then runs inside its tenant."""
    from django.db import connections

    from crm.tenancy import PLATFORM, all_tenants_context, current_tenant

    if current_tenant() is not None:
        raise RuntimeError("the roll-up fan-out runs outside any tenant")
    with all_tenants_context(), connections[PLATFORM].cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM crm_tenant t WHERE t.is_active AND ("
            " EXISTS (SELECT 1 FROM leads_reportchange c WHERE c.tenant_id = t.id)"
            " OR EXISTS (SELECT 1 FROM leads_reportday d"
            "  WHERE d.tenant_id = t.id AND d.time_zone <> t.timezone))"
            " ORDER BY t.id"
        )
        return [row[0] for row in cursor.fetchall()]


def cover(tenant) -> int:
    """Mark the hours of leads whose days have no roll-up (leads from before the roll-ups
    existed, or a day something missed), then refresh. Nightly. Returns the days
    recomputed."""
    with transaction.atomic():
        advisory_lock("lead-report-rollup", tenant.pk)
        marked = _mark_hours(tenant, uncovered_only=True)
        if marked:
            log.info("lead report roll-ups: %s uncovered hours in %s", marked, tenant.slug)
        return refresh(tenant)
