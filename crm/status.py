"""Liveness of the parts the product needs: database, broker, beat + worker; whether
the nightly metric check found figures that do not add up (crm.metric_checks); and how far
the reports' replica is behind the primary (docs/scaling.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
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


# On the replica, given the primary's current WAL position: whether it is a standby, what
# it has replayed, the bytes of WAL it has still to replay, and the seconds since the last
# commit it replayed when it has received more than it replayed (else it is caught up: 0).
_REPLICA_LAG = """
    SELECT pg_is_in_recovery(),
           pg_last_wal_replay_lsn()::text,
           greatest(0, pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()))::bigint,
           CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
"""


def replica_status() -> dict[str, str | int | float | None]:
    """The reports alias's replica (crm.metrics.reports_alias) and its lag behind the
    primary: `none` when reports read the primary itself (no REPORTS_DATABASE_URL);
    `ok`, or `lagging` past REPORTS_REPLICA_MAX_LAG seconds, with `lag_bytes` (WAL the
    primary has written and the replica not yet replayed), `lag_seconds` (since the last
    commit it replayed, 0 when it has replayed all it received; None before its first)
    and `replay_lsn`; `not_in_recovery` when the alias answers but is no standby;
    `error: …` when it does not answer."""
    from crm.metrics import REPORTS, reports_alias

    if reports_alias() != REPORTS:
        return {"status": "none"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            primary_lsn = cursor.fetchone()[0]
        with connections[REPORTS].cursor() as cursor:
            cursor.execute(_REPLICA_LAG, [primary_lsn])
            in_recovery, replay_lsn, lag_bytes, lag_seconds = cursor.fetchone()
    except Exception as exc:
        return {"status": f"error: {exc.__class__.__name__}: {exc}".strip()[:300]}
    if not in_recovery:
        return {"status": "not_in_recovery"}
    seconds = None if lag_seconds is None else round(float(lag_seconds), 3)
    late = seconds is not None and seconds > settings.REPORTS_REPLICA_MAX_LAG
    return {
        "status": "lagging" if late else "ok",
        "lag_bytes": int(lag_bytes),
        "lag_seconds": seconds,
        "replay_lsn": replay_lsn,
        "primary_lsn": primary_lsn,
    }


def system_status() -> tuple[bool, dict]:
    """(healthy, report). Healthy means the database and broker answer; beat, the
    metric check and the reports' replica are reported but do not fail the check, so a
    load balancer keeps serving while beat restarts, while a figure that does not add up
    is looked into, or while the replica catches up (only reports wait on it)."""
    report = {"db": check_db(), "broker": check_broker()}
    healthy = all(v == "ok" for v in report.values())
    db_ok = report["db"] == "ok"
    report["beat"] = beat_status() if db_ok else {"status": "unknown", "last_run": None}
    report["metrics"] = metrics_status() if db_ok else {"status": "unknown"}
    report["replica"] = replica_status() if db_ok else {"status": "unknown"}
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
