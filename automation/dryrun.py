"""The dry run (F47): a rule, saved or a draft, replayed over the last 30 days of its
event's log as the engine would have run it (false → true, cool-down, dedup, a time
condition's wait and the event that cancels it), writing nothing: how many times it
would have fired, for which subjects, to whom."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from automation import actions, conditions, engine
from automation.models import Action, Due, Rule
from crm.models import OutboxEvent

DAYS = 30


@dataclass
class DryRun:
    days: int
    events: int = 0
    fired: int = 0
    subjects: Counter = field(default_factory=Counter)  # subject → times it would fire
    recipients: Counter = field(default_factory=Counter)  # who → how many

    @property
    def subject_count(self) -> int:
        return len(self.subjects)

    @property
    def top_subjects(self) -> list[tuple[str, int]]:
        return self.subjects.most_common(50)

    @property
    def top_recipients(self) -> list[tuple[str, int]]:
        return self.recipients.most_common(50)


def _to(rule: Rule, event: OutboxEvent) -> list[str]:
    if rule.action in (Action.NOTIFY, Action.TASK) or (
        rule.action not in Action.values and (rule.to_owner or rule.to_role or rule.to_member_id)
    ):
        return [m.display_name for m in actions.recipients(rule, event.data)]
    if rule.action == Action.WEBHOOK:
        return [rule.webhook_url]
    return [event.key]


def replay(rule: Rule, *, days: int = DAYS, now: datetime | None = None) -> DryRun:
    """Inside the rule's tenant: what `rule` would have done over the last `days`."""
    now = now or timezone.now()
    result = DryRun(days=days)
    state: dict[str, tuple[bool, datetime | None]] = {}
    windows: set[tuple[str, int]] = set()
    names: dict = {}
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    since = now - timedelta(days=days)
    counts = None
    if rule.count_at_least:
        counts = conditions.window_counts(
            rule.trigger, since=since, days=rule.count_days, same=rule.same_fields
        )
    events = OutboxEvent.objects.filter(kind=rule.trigger, at__gte=since)
    for event in events.order_by("at", "id").iterator(chunk_size=2000):
        result.events += 1
        count = counts.get(event.pk, 0) if counts is not None else None
        verdict = engine.judge(rule, event, count=count)
        if verdict.skip:
            continue
        subject = engine.subject_of(rule, event)
        was_true, last_fired = state.get(subject, (False, None))
        if not verdict.matched:
            state[subject] = (False, last_fired)
            continue
        at = event.at
        if rule.wait_hours:
            # A clock: it would act at `at`, unless the awaited event came first.
            at = event.at + timedelta(hours=rule.wait_hours)
            if at > now or engine.awaited_came(rule, Due(subject=subject, event=event, due_at=at)):
                continue
            was_true = False
        state[subject] = (True, last_fired)
        if was_true or (last_fired is not None and at < last_fired + cooldown):
            continue
        window = (subject, engine.window_of(rule, event.at, event.pk))
        if window in windows:
            continue
        windows.add(window)
        state[subject] = (True, at)
        result.fired += 1
        result.subjects[subject] += 1
        # Who: depends on the event only through its owner (notify, task) or its key.
        by_owner = rule.action in (Action.NOTIFY, Action.TASK) or rule.action not in Action.values
        who = event.data.get("owner_id") if by_owner else 0
        if rule.action == Action.SET_LEVEL or who not in names:
            names[who] = _to(rule, event)
        for name in names[who]:
            result.recipients[name] += 1
    return result
