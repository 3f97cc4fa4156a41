"""Liveness of the parts the product needs: database, broker, beat + worker."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.celery import app
from crm.models import Heartbeat


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


def system_status() -> tuple[bool, dict]:
    """(healthy, report). Healthy means the database and broker answer; beat is reported
    but does not fail the check, so a load balancer keeps serving while beat restarts."""
    report = {"db": check_db(), "broker": check_broker()}
    healthy = all(v == "ok" for v in report.values())
    report["beat"] = (
        beat_status() if report["db"] == "ok" else {"status": "unknown", "last_run": None}
    )
    return healthy, report
