"""The nightly proof that every figure adds up: each metric's figure (what a page shows,
crm.metrics.values_of) recounted from the rows its drill-down lists (crm.metrics.drill_down
and recount), for every active tenant and every registered metric.

Beat runs `crm.check_metrics_all` every hour (settings.CRM_PERIODIC_TASKS); it queues
`crm.check_metrics` for each active tenant (crm.jobs.per_active_tenant). A tenant's run
checks its local yesterday once, at the first hourly run from CHECK_HOUR (03:00, after
the other nightly jobs) of its local day on: the day's MetricCheck rows say whether it is
done, so a run that comes again (the next hour, a redelivered message) does nothing and
a missed night is made up at the next run. `manage.py check_metrics` does the same on
demand, for any day.

Each metric is checked over two periods that end on the day: the day itself and the 30
days to it. Both the figure and its rows are read on the reports alias
(`crm.metrics.reading`), as the pages read them. A COUNT must equal the number of rows
exactly; a SUM or a MEDIAN may differ by 1e-6 of its size (floating point: the database
adds up numerics, the recount floats). A metric whose figure or rows cannot be computed
at all (a field that does not exist) is a mismatch too, with its error.

Every figure checked is kept (MetricCheck, row-level secured like any tenant row) for
KEEP_DAYS days: the matching ones are the proof, the others the evidence. A mismatch is
logged as an error on the `crm.metrics` logger, mailed to the platform admins
(settings.ADMINS) once the rows are saved, listed in the admin, and shown on /healthz
(`crm.status.metrics_status`, through the SECURITY DEFINER function registered here).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from crm import metrics
from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant
from crm.metrics import COUNT, Metric
from crm.models import MetricCheck, MetricPeriod, Tenant
from crm.tenancy import advisory_lock

logger = logging.getLogger("crm.metrics")

# The tenant's local hour from which the run checks yesterday (the other nightly jobs,
# from 02:00, have written their rows by then).
CHECK_HOUR = 3
# A fan-out still queued when the next hour's is due is pointless: it expires unrun.
CHECK_EXPIRES = 3600  # seconds
KEEP_DAYS = 90
TOLERANCE = 1e-6  # relative, for SUM and MEDIAN
# Below this, two sums are equal whatever their ratio (0.1 + 0.2 - 0.3 against 0).
ABSOLUTE_TOLERANCE = 1e-9
PERIODS = ((MetricPeriod.DAY, 1), (MetricPeriod.DAYS_30, 30))


@dataclass(frozen=True)
class Outcome:
    """One figure checked: the metric over [start, end], as computed and as recounted."""

    metric: str
    period: str
    start: date
    end: date
    figure: int | float | None
    recount: int | float | None
    ok: bool
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["start"], found["end"] = self.start.isoformat(), self.end.isoformat()
        return found


def _number(value) -> int | float | None:
    """A figure as kept and printed: a count as it is, a sum of numerics as a float."""
    return float(value) if isinstance(value, Decimal) else value


def agrees(metric: Metric, figure, recount) -> bool:
    """Whether a figure and its recount are the same: exactly for a count, within
    TOLERANCE of their size for a sum or a median (both None: a median of no rows)."""
    if figure is None or recount is None:
        return figure is None and recount is None
    if metric.aggregate == COUNT:
        return figure == recount
    return math.isclose(
        float(figure), float(recount), rel_tol=TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE
    )


def _error(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {exc}".strip()[:500]


def _figures(found: list[Metric], tenant: Tenant, start: date, end: date, alias: str):
    """{key: figure} and {key: error}: one query per family as the pages compute them;
    when that fails, metric by metric, so that one broken metric fails alone."""
    # A broken definition is what this check reports: the savepoint's rollback, then on.
    with contextlib.suppress(Exception), transaction.atomic(using=alias):
        return metrics.values_of(found, tenant=tenant, start=start, end=end, using=alias), {}
    figures, errors = {}, {}
    for metric in found:
        try:
            with transaction.atomic(using=alias):
                figures[metric.key] = metrics.value(
                    metric, tenant=tenant, start=start, end=end, using=alias
                )
        except Exception as exc:
            errors[metric.key] = _error(exc)
    return figures, errors


def _recount(metric: Metric, tenant: Tenant, start: date, end: date, alias: str):
    with transaction.atomic(using=alias):
        table = metrics.drill_down(metric, tenant=tenant, start=start, end=end, using=alias)
    return metrics.recount(metric, table)


def check_figures(tenant: Tenant, day: date, found: list[Metric] | None = None) -> list[Outcome]:
    """Check `found` (every registered metric by default) for `tenant` over the periods
    that end on its local `day`, reading the reports alias. Stores nothing. Inside
    `tenant_context(tenant)`."""
    found = metrics.metrics() if found is None else list(found)
    outcomes = []
    with metrics.reading(tenant) as alias:
        for period, days in PERIODS:
            start = day - timedelta(days=days - 1)
            figures, errors = _figures(found, tenant, start, day, alias)
            for metric in found:
                figure, error, recount = _number(figures.get(metric.key)), "", None
                if metric.key in errors:
                    error = errors[metric.key]
                else:
                    try:
                        recount = _number(_recount(metric, tenant, start, day, alias))
                    except Exception as exc:
                        error = _error(exc)
                ok = not error and agrees(metric, figure, recount)
                outcomes.append(Outcome(metric.key, period, start, day, figure, recount, ok, error))
    return outcomes


def run_check(tenant: Tenant, day: date, found: list[Metric] | None = None) -> list[Outcome]:
    """Check the tenant's figures for `day`, keep them (replacing an earlier check of that
    day), drop the checks older than KEEP_DAYS and alert on the mismatches. Inside
    `tenant_context(tenant)`; the mail goes once the transaction commits."""
    outcomes = check_figures(tenant, day, found)
    now = timezone.now()
    MetricCheck.objects.filter(tenant=tenant, day=day).delete()
    MetricCheck.objects.bulk_create(
        MetricCheck(
            tenant=tenant,
            day=day,
            metric=o.metric,
            period=o.period,
            start=o.start,
            figure=o.figure,
            recount=o.recount,
            ok=o.ok,
            error=o.error,
            checked_at=now,
        )
        for o in outcomes
    )
    MetricCheck.objects.filter(tenant=tenant, day__lt=day - timedelta(days=KEEP_DAYS)).delete()
    failed = [o for o in outcomes if not o.ok]
    if failed:
        alert(tenant, day, failed)
    return outcomes


def _line(o: Outcome) -> str:
    found = f"figure {o.figure}, rows {o.recount}" if not o.error else o.error
    return f"{o.metric} ({o.start} – {o.end}): {found}"


def alert(tenant: Tenant, day: date, failed: list[Outcome]) -> None:
    """Tell the platform admins: an error in the log now, a mail once the rows are saved."""
    lines = [_line(o) for o in failed]
    logger.error(
        "metric check: %d figure(s) of tenant %s for %s do not add up to their rows: %s",
        len(failed),
        tenant.slug,
        day,
        "; ".join(lines),
    )
    subject = f"{len(failed)} figure(s) of tenant {tenant.slug} do not add up ({day})"
    body = "\n".join(
        [
            f"The nightly metric check of tenant {tenant.slug} ({tenant.name}) for {day}",
            "found figures that differ from the rows their drill-down lists:",
            "",
            *lines,
            "",
            "Each figure and its rows are in the admin under Platform > Metric checks.",
        ]
    )

    def send() -> None:
        try:
            mail_admins(subject, body)
        except Exception:
            logger.exception("metric check: the mail to the admins could not be sent")

    transaction.on_commit(send)


def nightly(tenant: Tenant, *, now: datetime | None = None) -> dict | None:
    """The hourly run for one tenant: check its local yesterday if it is CHECK_HOUR or
    later in its time zone and that day is not checked yet; else None."""
    now = now or timezone.now()
    local = timezone.localtime(now, timezone=tenant.tzinfo)
    if local.hour < CHECK_HOUR:
        return None
    day = local.date() - timedelta(days=1)
    # Two runs at once (a redelivered message beside the next hour's): one checks.
    advisory_lock("crm.check_metrics", tenant.pk, day)
    if MetricCheck.objects.filter(tenant=tenant, day=day).exists():
        return None
    outcomes = run_check(tenant, day)
    return summary(tenant, day, outcomes)


def summary(tenant: Tenant, day: date, outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "tenant": tenant.slug,
        "day": day.isoformat(),
        "checked": len(outcomes),
        "mismatches": [o.as_dict() for o in outcomes if not o.ok],
    }


@app.task(name="crm.check_metrics_all")
def check_metrics_all() -> int:
    """Beat, hourly: queue each active tenant's metric check."""
    return per_active_tenant(check_metrics, expires=CHECK_EXPIRES)


@app.task(base=TenantTask, name="crm.check_metrics", round_robin=True)
def check_metrics(tenant_id: int) -> dict | None:
    """One tenant's check of yesterday, when due (`nightly`)."""
    from crm.tenancy import current_tenant

    return nightly(current_tenant())


# --- /healthz: the latest check of every tenant ------------------------------------------


def register() -> None:
    """The status's cross-tenant read (before any tenant is known): one narrow answer."""
    from crm.rls import DefinerFunction, register_definer

    register_definer(
        DefinerFunction(
            # Over the active tenants whose latest check is of their local yesterday (or,
            # before CHECK_HOUR, the day before): how many, how many with a mismatch, and
            # how many mismatches.
            signature="crm_metric_check_status()",
            returns="TABLE (tenants bigint, failing bigint, mismatches bigint)",
            body=(
                "SELECT count(*), count(*) FILTER (WHERE m.bad > 0),"
                " coalesce(sum(m.bad), 0)::bigint"
                " FROM public.crm_tenant t CROSS JOIN LATERAL ("
                " SELECT c.day, count(*) FILTER (WHERE NOT c.ok) AS bad"
                " FROM public.crm_metriccheck c WHERE c.tenant_id = t.id AND c.day = ("
                " SELECT max(d.day) FROM public.crm_metriccheck d WHERE d.tenant_id = t.id)"
                " GROUP BY c.day) m"
                " WHERE t.is_active AND m.day >= (now() AT TIME ZONE t.timezone)::date - 2"
            ),
            reads=("crm_metriccheck",),
        )
    )
