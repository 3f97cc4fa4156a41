"""The rule engine (F47): each new event against the tenant's active rules of its kind,
safe by default. Registered as a consumer of the outbox (crm.events) by AutomationConfig.

Per event and rule, in order: its own change (skipped), the chain depth (stopped at
crm.events.MAX_DEPTH), the condition and windowed count, false → true per subject, the
cool-down, the dedup row, then the action. Every evaluation writes a `Run`. Three failed
actions in a row pause the rule and tell the tenant's admins. See docs/automation.md.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automation import actions, conditions
from automation.models import Due, Firing, Outcome, Rule, RuleState, Run
from crm.events import MAX_DEPTH
from crm.models import OutboxEvent
from crm.notify import admins_of, notify

logger = logging.getLogger(__name__)

FAILURES_TO_PAUSE = 3
PAUSED_EVENT = "automation.rule_paused"


def subject_of(rule: Rule, event: OutboxEvent) -> str:
    """What the rule fires once for: the key a windowed count groups by (the customer),
    else the event's object."""
    if rule.count_at_least:
        return event.key
    return f"{event.object_type.split('.')[-1]}:{event.object_id}"


@dataclass
class Verdict:
    """What a rule makes of one event, before any state: the values logged with it."""

    matched: bool
    values: dict
    count: int | None = None
    detail: str = ""
    skip: str = ""  # an Outcome that ends the evaluation before the condition


def judge(rule: Rule, event: OutboxEvent, *, count: int | None = None) -> Verdict:
    """The rule's condition and windowed count on `event` (reads only; `count` when the
    caller has it already, as the dry run does)."""
    if rule.pk is not None and event.rule_id == rule.pk:
        return Verdict(False, {}, skip=Outcome.OWN_CHANGE)
    if event.depth >= MAX_DEPTH:
        return Verdict(False, {}, skip=Outcome.DEPTH_LIMIT)
    names = conditions.named_fields(rule.trigger, rule.condition)
    values = {name: event.data.get(name) for name in names}
    matched, detail = conditions.evaluate(rule.trigger, rule.condition, event.data)
    if rule.count_at_least:
        if count is None:
            count = conditions.window_count(event, days=rule.count_days, same=rule.same_fields)
        for name in rule.same_fields:
            values[name] = event.data.get(name)
        matched = matched and count >= rule.count_at_least
    return Verdict(matched, values, count, detail)


def window_of(rule: Rule, at: datetime, event_id: int) -> int:
    """The dedup window: the cool-down's time bucket (each event its own without one)."""
    if not rule.cooldown_minutes:
        return -event_id
    return int(at.timestamp() // (rule.cooldown_minutes * 60))


# The run log of the batch being consumed, written in one statement at its end (None: each
# run is written at once).
_runs: contextvars.ContextVar[list[Run] | None] = contextvars.ContextVar(
    "automation_runs", default=None
)


def _log(rule, event, subject, verdict: Verdict, outcome: str, detail: str = "") -> Run:
    run = Run(
        tenant_id=rule.tenant_id,
        rule=rule,
        event=event,
        kind=event.kind,
        subject=subject,
        values=verdict.values,
        count=verdict.count,
        matched=None if verdict.skip else verdict.matched,
        outcome=outcome,
        detail=(detail or verdict.detail)[:500],
    )
    batch = _runs.get()
    if batch is None:
        run.save(force_insert=True)
    else:
        batch.append(run)
    return run


def evaluate(
    rule: Rule, event: OutboxEvent, *, now: datetime | None = None, true_states: set | None = None
) -> Run:
    """Evaluate `rule` on `event` inside the current tenant and act on it; the run. A rule
    with a time condition starts a clock instead (`Due`), acted on by `sweep_due`."""
    now = now or timezone.now()
    subject = subject_of(rule, event)
    verdict = judge(rule, event)
    if verdict.skip:
        return _log(rule, event, subject, verdict, verdict.skip)
    if rule.wait_hours and verdict.matched:
        due_at = event.at + timedelta(hours=rule.wait_hours)
        Due.objects.get_or_create(
            tenant_id=rule.tenant_id,
            rule=rule,
            event=event,
            defaults={"subject": subject, "due_at": due_at},
        )
        detail = timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M")
        return _log(rule, event, subject, verdict, Outcome.WAITING, detail)
    return _settle(rule, event, subject, verdict, now, true_states)


def _settle(
    rule: Rule, event: OutboxEvent, subject: str, verdict: Verdict, now, true_states=None
) -> Run:
    """False → true, the cool-down, the dedup row, then the action. `true_states`: the
    (rule, subject) pairs known true (read and locked once per batch by `consume`), so a
    false result about a subject that was not true writes nothing but its run."""
    pair = (rule.pk, subject)
    if not verdict.matched:
        if true_states is None or pair in true_states:
            RuleState.objects.filter(rule=rule, subject=subject, is_true=True).update(is_true=False)
            if true_states is not None:
                true_states.discard(pair)
        return _log(rule, event, subject, verdict, Outcome.NOT_MATCHED)
    if true_states is not None:
        true_states.add(pair)  # whatever follows leaves it true, or rolls back the batch
    state, _created = RuleState.objects.select_for_update().get_or_create(
        tenant_id=rule.tenant_id, rule=rule, subject=subject
    )
    was_true = state.is_true
    if was_true and not rule.wait_hours:
        return _log(rule, event, subject, verdict, Outcome.STILL_TRUE)
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    if state.last_fired_at is not None and now < state.last_fired_at + cooldown:
        RuleState.objects.filter(pk=state.pk).update(is_true=True)
        return _log(rule, event, subject, verdict, Outcome.COOLDOWN)
    try:
        with transaction.atomic():
            _firing, fresh = Firing.objects.get_or_create(
                tenant_id=rule.tenant_id,
                rule=rule,
                subject=subject,
                window=window_of(rule, event.at, event.pk),
                defaults={"at": now},
            )
            if not fresh:
                RuleState.objects.filter(pk=state.pk).update(is_true=True)
                return _log(rule, event, subject, verdict, Outcome.DUPLICATE)
            detail = actions.run(rule, event, subject)
            RuleState.objects.filter(pk=state.pk).update(is_true=True, last_fired_at=now)
    except actions.ActionError as exc:
        # The savepoint took the firing, the state and any half-done action back: the next
        # event may try again.
        _failed(rule, str(exc), now)
        return _log(rule, event, subject, verdict, Outcome.FAILED, str(exc))
    if rule.consecutive_failures:
        Rule.objects.filter(pk=rule.pk).update(consecutive_failures=0, last_error="")
        rule.consecutive_failures = 0
    return _log(rule, event, subject, verdict, Outcome.FIRED, detail)


def awaited_came(rule: Rule, due: Due) -> bool:
    """Whether an event of the rule's `unless_kind` about the due's subject came between
    the trigger and the due time: the same key, or naming the subject's lead or customer
    in its data (a follow-up on a lead is keyed by the lead's customer once it has one)."""
    if not rule.unless_kind:
        return False
    prefix, _sep, pk = due.subject.partition(":")
    about = Q(key=due.subject)
    if prefix in ("lead", "customer") and pk.isdigit():
        about |= Q(data__contains={f"{prefix}_id": int(pk)})
    return OutboxEvent.objects.filter(
        about, kind=rule.unless_kind, at__gt=due.event.at, at__lte=due.due_at
    ).exists()


def sweep_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Inside one tenant: act on the time conditions that are due (claimed with SKIP
    LOCKED and marked done in the same transaction: two sweeps never act twice). How
    many were handled."""
    now = now or timezone.now()
    with transaction.atomic():
        dues = list(
            Due.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(done_at__isnull=True, due_at__lte=now)
            .select_related("rule", "event")
            .order_by("due_at", "id")[:limit]
        )
        if not dues:
            return 0
        Due.objects.filter(pk__in=[d.pk for d in dues]).update(done_at=now)
        for due in dues:
            rule, event = due.rule, due.event
            if not rule.live:
                continue
            verdict = judge(rule, event)
            if awaited_came(rule, due):
                verdict.detail = rule.unless_kind
                _log(rule, event, due.subject, verdict, Outcome.CANCELLED)
                continue
            _settle(rule, event, due.subject, verdict, now)
    return len(dues)


def _failed(rule: Rule, error: str, now: datetime) -> None:
    rule.consecutive_failures += 1
    rule.last_error = error[:500]
    fields = ["consecutive_failures", "last_error"]
    if rule.consecutive_failures >= FAILURES_TO_PAUSE and rule.paused_at is None:
        rule.paused_at = now
        fields.append("paused_at")
        logger.warning("automation rule %s paused: %s", rule.pk, error)
        notify(
            event=PAUSED_EVENT,
            recipients=admins_of(),
            params={"rule": rule.name, "failures": rule.consecutive_failures, "error": error[:200]},
            link=f"/admin/automation/rule/{rule.pk}/change/",
        )
    rule.save(update_fields=fields)


def consume(events: list[OutboxEvent]) -> None:
    """The outbox consumer: every event against the live rules of its kind, in order."""
    kinds = {e.kind for e in events}
    by_kind: dict[str, list[Rule]] = {}
    for rule in Rule.objects.filter(trigger__in=kinds, is_active=True, paused_at__isnull=True):
        by_kind.setdefault(rule.trigger, []).append(rule)
    if not by_kind:
        return
    rules = [r for rs in by_kind.values() for r in rs]
    subjects = {subject_of(r, e) for e in events for r in by_kind.get(e.kind, ())}
    true_states = set(
        RuleState.objects.select_for_update()
        .filter(rule__in=rules, subject__in=subjects, is_true=True)
        .values_list("rule_id", "subject")
    )
    runs: list[Run] = []
    token = _runs.set(runs)
    try:
        for event in events:
            for rule in by_kind.get(event.kind, ()):
                if rule.paused_at is not None:
                    continue  # paused by an earlier event of this batch
                evaluate(rule, event, true_states=true_states)
    finally:
        _runs.reset(token)
    Run.objects.bulk_create(runs, batch_size=1000)
