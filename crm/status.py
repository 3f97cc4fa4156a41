"""Liveness of the parts the product needs: database, broker, beat + worker; and whether
the nightly metric check found figures that do not add up (crm.metric_checks)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.celery import app
from crm.models import Heartbeat, MetricCheck, Tenant


def check_db() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"error: {exc.__class__.__name__}: {exc}".strip()[:300]
    return "ok"


def check_broker() -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:
        return f"error: {exc.__class__.__name__}: {exc}".strip()[:300]
    return "ok"


def beat_status() -> dict[str, str | datetime | None]:
    """When the heartbeat task (beat schedules it, a worker runs it) last ran: `last_run`
    is an aware datetime (pages format it for people, /healthz as ISO 8601)."""
    try:
        last: datetime | None = (
            Heartbeat.objects.filter(name="beat").values_list("last_seen", flat=True).first()
        )
    except Exception as exc:
        return {"status": f"error: {exc.__class__.__name__}", "last_run": None}
    if last is None:
        return {"status": "never", "last_run": None}
    age = (timezone.now() - last).total_seconds()
    state = "ok" if age <= settings.HEARTBEAT_STALE_AFTER else "stale"
    return {"status": state, "last_run": last}


def metrics_status() -> dict[str, str | int]:
    """The latest metric check of every active tenant, if it is of the tenant's yesterday
    (or, before the night's run, the day before): `mismatch` when a figure did not add up,
    `ok` when all did, `never` when no tenant has such a check (not run yet, or no
    metrics). Read through a SECURITY DEFINER function: the checks are tenant rows, and
    this runs before any tenant is known."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT tenants, failing, mismatches FROM crm_metric_check_status()")
            tenants, failing, mismatches = cursor.fetchone()
    except Exception as exc:
        return {"status": f"error: {exc.__class__.__name__}"}
    state = "mismatch" if mismatches else ("ok" if tenants else "never")
    return {
        "status": state,
        "tenants": tenants,
        "failing_tenants": failing,
        "mismatches": mismatches,
    }


def tenant_metrics_status(tenant: Tenant) -> dict[str, str | int]:
    """`metrics_status()` for one tenant, from its own checks (its admins' home page: the
    other tenants' are none of theirs). Inside the tenant's context."""
    checks = MetricCheck.objects.filter(tenant=tenant)
    latest = checks.order_by("-day").values_list("day", flat=True).first()
    today = timezone.localdate(timezone=tenant.tzinfo)
    if latest is None or latest < today - timedelta(days=2):
        return {"status": "never", "tenants": 0, "failing_tenants": 0, "mismatches": 0}
    mismatches = checks.filter(day=latest, ok=False).count()
    return {
        "status": "mismatch" if mismatches else "ok",
        "tenants": 1,
        "failing_tenants": 1 if mismatches else 0,
        "mismatches": mismatches,
    }


def system_status() -> tuple[bool, dict]:
    """(healthy, report). Healthy means the database and broker answer; beat and the
    metric check are reported but do not fail the check, so a load balancer keeps
    serving while beat restarts or while a figure that does not add up is looked into."""
    report = {"db": check_db(), "broker": check_broker()}
    healthy = all(v == "ok" for v in report.values())
    db_ok = report["db"] == "ok"
    report["beat"] = beat_status() if db_ok else {"status": "unknown", "last_run": None}
    report["metrics"] = metrics_status() if db_ok else {"status": "unknown"}
    return healthy, report


def for_page(request) -> dict | None:
    """The status a page shows a platform superuser or a tenant admin (the home page, the
    dashboard), or None for anyone else: the system's, with the tenant admin's own tenant's
    metric check in place of the platform's."""
    membership = getattr(request, "membership", None)
    if not (request.user.is_superuser or (membership and membership.is_admin)):
        return None
    _healthy, report = system_status()
    if not request.user.is_superuser and report["db"] == "ok":
        report["metrics"] = tenant_metrics_status(request.tenant)
    return report
