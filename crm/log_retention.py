"""Retention of the logs that would otherwise grow forever: nightly, per tenant.

The kernel's part is the business-event log (`crm.OutboxEvent`): processed rows older
than `EVENT_LOG_DAYS` are deleted. Unprocessed rows (the outbox) never are, nor an event
another tenant table still references with a database key (a clock waiting on it, a
webhook call not finished): those stay until that row goes. The apps register what they
prune themselves (`register_pruner`: the automation app's run log, handled clocks,
finished webhook calls and spent dedup rows) and how long they need the event log: the
job keeps events at least that long, whatever `EVENT_LOG_DAYS` says (`event_days`).

Beat runs `crm.log_retention_all` nightly; it queues `crm.log_retention` per active tenant
(round-robin across rounds, crm.jobs). A tenant's run calls each app's pruner, then
deletes its events. Every delete is by batches of `BATCH` rows, each batch a short tenant
transaction of its own, found through an index (never a scan of the whole table): a
range of a btree the table has anyway, per rule or per event kind, or the primary key
`(tenant_id, id)` walked in insertion order up to the first row still young
(`delete_batches`, `delete_in_order`; docs/automation.md, "Retention").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import checks
from django.db import connection
from django.utils import timezone

from crm.celery import app, task_started
from crm.jobs import per_active_tenant
from crm.models import OutboxEvent, Tenant
from crm.tenancy import tenant_context

logger = logging.getLogger(__name__)

BATCH = 10_000  # rows a statement deletes
EXPIRES = 6 * 3600  # seconds: a night's run still queued after this waits for the next round


@dataclass(frozen=True)
class LogPruner:
    """What an app prunes nightly. `prune(tenant, now, batch)` runs outside any transaction
    and deletes the tenant's rows past their days (each batch a tenant transaction of its
    own, `delete_batches` / `delete_in_order`), returning how many per table;
    `event_days()` is how long the app needs the business-event log (0: not at all)."""

    key: str
    prune: Callable[[Tenant, datetime, int], dict[str, int]] = field(compare=False)
    event_days: Callable[[], int] = field(default=lambda: 0, compare=False)


_pruners: dict[str, LogPruner] = {}


def register_pruner(pruner: LogPruner) -> None:
    """Add an app's pruner (from its AppConfig.ready()); registering again replaces."""
    _pruners[pruner.key] = pruner


def pruners() -> list[LogPruner]:
    return sorted(_pruners.values(), key=lambda p: p.key)


def event_days() -> int:
    """The days processed events are kept: `EVENT_LOG_DAYS`, raised to the longest an app
    needs them (automation: the longest windowed count plus the dry run's 30 days, and its
    run log's days, so no run outlives its event)."""
    needed = max((p.event_days() for p in pruners()), default=0)
    return max(settings.EVENT_LOG_DAYS, needed, 1)


# --- Deleting by batches --------------------------------------------------------------------


def delete_batches(tenant: Tenant, table: str, select: str, params: dict, *, batch: int) -> int:
    """Delete the tenant's rows of `table` whose ids `select` picks, `batch` at a time
    (`select` ends with `LIMIT %(batch)s` and picks only rows to delete, through an index
    range), each batch a tenant transaction of its own, until a batch comes up short.
    How many were deleted."""
    sql = (
        f"DELETE FROM {table} WHERE tenant_id = %(tenant)s"  # noqa: S608 — our table names
        f" AND id = ANY(ARRAY({select}))"
    )
    params = {**params, "tenant": tenant.pk, "batch": batch}
    total = 0
    while True:
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute(sql, params)
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch:
            return total


def delete_in_order(
    tenant: Tenant,
    table: str,
    *,
    doomed: str,
    young: str,
    params: dict,
    batch: int,
    order: str = "id",
    within: str = "",
) -> int:
    """Walk the tenant's rows of `table` in `order` (the primary key `(tenant_id, id)` by
    default; with `within`, e.g. `AND rule_id = %(rule)s`, another index whose columns are
    tenant, the `within` ones, then `order`), `batch` rows at a time, each batch a tenant
    transaction of its own: delete those `doomed` and stop after the batch that holds a
    `young` row (the rows after it were written later). Rows neither doomed nor young (an
    open clock, a held call) are stepped over. How many were deleted."""
    sql = f"""
WITH span AS MATERIALIZED (
    SELECT id, {order} AS pos, ({doomed}) AS doomed, ({young}) AS young
    FROM {table}
    WHERE tenant_id = %(tenant)s {within} AND {order} > %(after)s
    ORDER BY {order}
    LIMIT %(batch)s
), gone AS (
    DELETE FROM {table}
    WHERE tenant_id = %(tenant)s AND id = ANY(ARRAY(SELECT id FROM span WHERE doomed))
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM span), (SELECT max(pos) FROM span),
       coalesce((SELECT bool_or(young) FROM span), false)
"""  # noqa: S608 — our table and column names; the values are parameters
    params = {**params, "tenant": tenant.pk, "batch": batch, "after": -(2**63)}
    total = 0
    while True:
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute(sql, params)
            deleted, walked, last, stop = cursor.fetchone()
        total += deleted
        if stop or walked < batch:
            return total
        params["after"] = last


def distinct_values(tenant: Tenant, table: str, column: str) -> list:
    """The distinct values of `column` in the tenant's rows of `table`, read from an index
    that starts (tenant_id, column) by skipping from one value to the next (a statement
    of one index probe per value, not a scan of the rows)."""
    sql = f"""
WITH RECURSIVE v(x) AS (
    (SELECT {column} FROM {table} WHERE tenant_id = %(tenant)s ORDER BY {column} LIMIT 1)
    UNION ALL
    SELECT (SELECT {column} FROM {table} WHERE tenant_id = %(tenant)s AND {column} > v.x
            ORDER BY {column} LIMIT 1)
    FROM v WHERE v.x IS NOT NULL
)
SELECT x FROM v WHERE x IS NOT NULL
"""  # noqa: S608 — our table and column names
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant.pk})
        return [row[0] for row in cursor.fetchall()]


# --- The event log ----------------------------------------------------------------------------


def _event_references() -> list[tuple[str, str]]:
    """(table, column) of every database key from a tenant table to the events (an
    automation clock's event, a webhook call's): an event they reference is kept."""
    from crm.keys import references

    table = OutboxEvent._meta.db_table
    return sorted({(r.table, r.column) for r in references() if r.ref_table == table})


def prune_events(tenant: Tenant, *, now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete the tenant's processed events older than `days`, kind by kind as ranges of
    `(tenant, kind, at)` (`outboxevent_kind_at`); unprocessed or still referenced ones are
    kept. How many were deleted."""
    kept = "".join(
        f" AND NOT EXISTS (SELECT 1 FROM {ref} r"  # noqa: S608 — table names from the models
        f" WHERE r.tenant_id = e.tenant_id AND r.{column} = e.id)"
        for ref, column in _event_references()
    )
    select = (
        "SELECT e.id FROM crm_outboxevent e"  # noqa: S608 — table names from the models
        " WHERE e.tenant_id = %(tenant)s AND e.kind = %(kind)s AND e.at < %(cutoff)s"
        f" AND e.processed_at IS NOT NULL{kept} ORDER BY e.at LIMIT %(batch)s"
    )
    cutoff = now - timedelta(days=days)
    deleted = 0
    for kind in distinct_values(tenant, "crm_outboxevent", "kind"):
        deleted += delete_batches(
            tenant, "crm_outboxevent", select, {"kind": kind, "cutoff": cutoff}, batch=batch
        )
    return deleted


# --- The job ----------------------------------------------------------------------------------


def prune(tenant: Tenant, *, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """One tenant's night: each app's pruner (their rows go before the events they point
    at), then the event log. Call it outside any transaction (each batch commits on its
    own). How many rows were deleted, per `app.table` and `events`."""
    now = now or timezone.now()
    done: dict[str, int] = {}
    for pruner in pruners():
        for name, count in pruner.prune(tenant, now, batch).items():
            done[f"{pruner.key}.{name}"] = count
    done["events"] = prune_events(tenant, now=now, days=event_days(), batch=batch)
    return done


def raised_message() -> str:
    """What to say when `EVENT_LOG_DAYS` is shorter than the apps need ("" when it is not)."""
    days = event_days()
    if days <= settings.EVENT_LOG_DAYS:
        return ""
    return (
        f"EVENT_LOG_DAYS={settings.EVENT_LOG_DAYS} is raised to {days}: the apps read the"
        " business-event log that far back (the longest windowed count of a rule plus the"
        " 30-day dry run, and AUTOMATION_LOG_DAYS)"
    )


def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """At start-up (Django's system checks): say that EVENT_LOG_DAYS will be raised."""
    message = raised_message()
    return [checks.Warning(message, id="crm.W001")] if message else []


@app.task(name="crm.log_retention_all")
def log_retention_all() -> int:
    """Beat, nightly: queue each active tenant's retention run."""
    if message := raised_message():
        logger.warning(message)
    return per_active_tenant(log_retention, expires=EXPIRES)


@app.task(name="crm.log_retention")
def log_retention(tenant_id: int) -> dict[str, int] | None:
    """One tenant's retention run (`prune`), each batch in a transaction of its own (so not
    a TenantTask, whose one transaction would hold the night's deletes until the last). A
    tenant gone or inactive ends it quietly."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.warning("retention of tenant %s skipped: the tenant is gone or inactive", tenant_id)
        return None
    task_started(log_retention.name, tenant_id)  # the next round starts after this tenant
    return prune(tenant)
