"""Business events (F47): the kinds the apps register, `emit()`, and the outbox drain.

An app that makes a change worth reacting to calls `emit(kind, obj, key=…, **data)` inside
the transaction of the change: the `OutboxEvent` row commits or rolls back with it. After
the commit `crm.events_process(tenant_id)` hands the tenant's new rows to the registered
consumers (the automation app's engine) and marks them processed; the beat job
`crm.events_redrive` queues tenants whose rows were left behind (a lost broker message, a
crashed worker), so an emitted event is never lost. Processed rows stay: they are the
event log that windowed counts and the dry run read, kept `EVENT_LOG_DAYS` (the nightly
retention, crm.log_retention). See docs/automation.md.

The kernel knows no consumer and no emitter: apps register their kinds
(`register_kind`), consumers (`register_consumer`) and the actions they offer to rules
(`register_action`) from their AppConfig.ready().
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import models, transaction
from django.utils import timezone

from crm.celery import app
from crm.models import OutboxEvent, Tenant
from crm.tenancy import all_tenants_context, current_tenant, tenant_context

logger = logging.getLogger(__name__)

# The field types a kind may declare (what a rule's condition is typed over).
FIELD_TYPES = (str, int, float, bool, datetime)
# A chain of rule-caused events stops here: an event at this depth triggers nothing.
MAX_DEPTH = 3
BATCH = 500
# Unprocessed rows older than this are queued again by the re-drive.
REDRIVE_AFTER = timedelta(seconds=10)


@dataclass(frozen=True)
class EventKind:
    key: str  # "<app>.<what>", ≤ 40 characters
    label: str  # lazy, the admin's trigger choice
    fields: dict[str, type] = field(default_factory=dict, compare=False)
    # The model its key names ("customer": `customer:<pk>`), usually; "" when it varies.
    keyed_by: str = ""


_kinds: dict[str, EventKind] = {}
Consumer = Callable[[list[OutboxEvent]], None]
_consumers: list[Consumer] = []


def register_kind(kind: EventKind) -> None:
    """Make an event kind known (from an AppConfig.ready()); registering again replaces."""
    if len(kind.key) > 40:
        raise ValueError(f"event kind {kind.key!r} is longer than 40 characters")
    bad = {name: t for name, t in kind.fields.items() if t not in FIELD_TYPES}
    if bad:
        raise ValueError(f"event kind {kind.key!r}: unsupported field types {bad}")
    _kinds[kind.key] = kind


def get_kind(key: str) -> EventKind | None:
    return _kinds.get(key)


def kinds() -> list[EventKind]:
    return sorted(_kinds.values(), key=lambda k: k.key)


def register_consumer(consumer: Consumer) -> None:
    """Add a function that receives each batch of a tenant's new events (inside the
    tenant, in the drain's transaction). Registering the same function again is a no-op."""
    if consumer not in _consumers:
        _consumers.append(consumer)


# --- Actions the apps offer to rules ----------------------------------------------------------


class ActionFailed(Exception):
    """An app's rule action could not be done; `str()` says why (the run log's detail)."""


@dataclass(frozen=True)
class RuleAction:
    """An action an app offers automation rules beside the engine's own (notify, task, set
    level, webhook): `run(event)` does it for one event of one of `kinds` (inside the
    event's tenant, in the engine's savepoint: a failure undoes it) and returns a short
    detail for the run log, or raises ActionFailed. Health's "retention task" is one."""

    key: str  # stored in the rule, ≤ 16 characters
    label: str  # lazy, the admin's action choice
    kinds: tuple[str, ...]
    run: Callable[[OutboxEvent], str] = field(compare=False)


_actions: dict[str, RuleAction] = {}


def register_action(action: RuleAction) -> None:
    """Offer an action to rules (from an AppConfig.ready()); registering again replaces."""
    if len(action.key) > 16:
        raise ValueError(f"rule action {action.key!r} is longer than 16 characters")
    _actions[action.key] = action


def get_action(key: str) -> RuleAction | None:
    return _actions.get(key)


def rule_actions() -> list[RuleAction]:
    return sorted(_actions.values(), key=lambda a: a.key)


# --- Causation: the rule whose action is making the change -------------------------------

_cause: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "crm_event_cause", default=None
)


@contextmanager
def caused_by(rule_id: int, depth: int) -> Iterator[None]:
    """Events emitted inside the block were caused by rule `rule_id`'s action, at chain
    `depth` (the depth of the event that fired the rule, plus one)."""
    token = _cause.set((rule_id, depth))
    try:
        yield
    finally:
        _cause.reset(token)


# --- emit() ----------------------------------------------------------------------------------


def object_key(obj: models.Model) -> str:
    """The default key of an object: "<model>:<pk>" ("customer:42")."""
    return f"{obj._meta.model_name}:{obj.pk}"


def _value(kind: str, name: str, declared: type, value):
    if value is None:
        return None
    if declared is datetime:
        if not isinstance(value, datetime):
            raise TypeError(f"{kind}.{name} must be a datetime")
        return value.isoformat()
    if declared is float and isinstance(value, int | float | Decimal) and value is not True:
        return float(value)
    if declared is int and isinstance(value, date):
        raise TypeError(f"{kind}.{name} must be an int")
    if declared is str:
        return str(value)
    if not isinstance(value, declared) or (declared is int and isinstance(value, bool)):
        raise TypeError(f"{kind}.{name} must be {declared.__name__}, not {type(value).__name__}")
    return value


def event_row(
    kind: str, obj: models.Model, /, *, key: str | None = None, at: datetime | None = None, **data
) -> OutboxEvent:
    """The unsaved outbox row for `kind` about `obj` (its data checked against the kind)."""
    declared = get_kind(kind)
    if declared is None:
        raise ValueError(f"unknown event kind {kind!r}: register_kind() it first")
    unknown = set(data) - set(declared.fields)
    if unknown:
        raise ValueError(f"event kind {kind!r} has no fields {sorted(unknown)}")
    values = {name: _value(kind, name, t, data.get(name)) for name, t in declared.fields.items()}
    cause = _cause.get()
    rule_id, depth = cause if cause is not None else (None, 0)
    return OutboxEvent(
        tenant_id=obj.tenant_id,
        kind=kind,
        object_type=obj._meta.label_lower,
        object_id=obj.pk,
        key=(key or object_key(obj))[:80],
        data=values,
        at=at or timezone.now(),
        depth=depth,
        rule_id=rule_id,
    )


def emit(
    kind: str, obj: models.Model, /, *, key: str | None = None, at: datetime | None = None, **data
) -> OutboxEvent:
    """Record that `kind` happened to `obj` (a tenant-owned row), in the caller's
    transaction; processed after it commits. `key` is what windowed counts group by (the
    object itself by default); `data` are the kind's declared fields."""
    row = event_row(kind, obj, key=key, at=at, **data)
    row.save(force_insert=True)
    _kick(row.tenant_id)
    return row


def emit_many(rows: list[OutboxEvent]) -> list[OutboxEvent]:
    """Save rows built by `event_row()` in one statement (bulk writers such as intake)."""
    if not rows:
        return rows
    OutboxEvent.objects.bulk_create(rows)
    for tenant_id in {r.tenant_id for r in rows}:
        _kick(tenant_id)
    return rows


def _kick(tenant_id: int) -> None:
    """Queue the tenant's drain once the transaction commits, once per transaction. A
    broker outage is logged, not raised: the re-drive queues it later."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        for _sids, func, _robust in connection.run_on_commit:
            if isinstance(func, partial) and func.func is _queue and func.args == (tenant_id,):
                return
    transaction.on_commit(partial(_queue, tenant_id), robust=True)


def _queue(tenant_id: int) -> None:
    events_process.delay(tenant_id)


# --- The drain ----------------------------------------------------------------------------


def process_pending(*, limit: int = BATCH) -> int:
    """Hand the current tenant's unprocessed events (up to `limit`, oldest first) to the
    consumers and mark them processed, in the caller's transaction. Rows another worker
    holds are skipped (SKIP LOCKED). A consumer's exception rolls the batch back: the
    rows stay in the outbox and the re-drive tries again. How many were processed."""
    if current_tenant() is None:
        raise RuntimeError("process_pending() runs inside one tenant")
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")[:limit]
        )
        if not events:
            return 0
        for consumer in _consumers:
            consumer(events)
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            processed_at=timezone.now()
        )
    return len(events)


def stale_tenants(*, older_than: timedelta = REDRIVE_AFTER) -> list[int]:
    """The tenants with events left unprocessed longer than `older_than`. A platform job:
    it reads tenant ids only; each is then drained inside its own tenant."""
    if current_tenant() is not None:
        raise RuntimeError("the event re-drive runs outside any tenant")
    cutoff = timezone.now() - older_than
    with all_tenants_context():
        return sorted(
            set(
                OutboxEvent.objects.filter(processed_at__isnull=True, at__lt=cutoff)
                .values_list("tenant_id", flat=True)
                .distinct()
            )
        )


@app.task(name="crm.events_process")
def events_process(tenant_id: int) -> int:
    """Drain the tenant's outbox, batch by batch, until it is empty: each batch in a tenant
    transaction of its own (so not a TenantTask, whose one transaction would hold every
    batch's locks and rows until the last), as the leads' inbox does. A tenant gone or
    inactive ends it quietly."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.warning("outbox of tenant %s skipped: the tenant is gone or inactive", tenant_id)
        return 0
    done = 0
    while True:
        with tenant_context(tenant):
            batch = process_pending()
        done += batch
        if batch < BATCH:
            return done


@app.task(name="crm.events_redrive")
def events_redrive() -> int:
    """Beat, every 15 s: queue the drain of tenants whose events were left behind."""
    tenant_ids = stale_tenants()
    for tenant_id in tenant_ids:
        events_process.apply_async((tenant_id,), expires=60)
    return len(tenant_ids)
