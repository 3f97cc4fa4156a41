"""The dry run (F47): a rule, saved or a draft, replayed over the last 30 days of its
event's log as the engine would have run it (false → true, cool-down, dedup, a time
condition's wait and the event that cancels it), writing nothing: how many times it
would have fired, for which subjects, to whom."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone
from django.utils.translation import get_language

from automation import actions, conditions, engine
from automation.models import Action, Rule
from crm.events import MAX_DEPTH

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


def _to(rule: Rule, event) -> list[str]:
    if rule.action in (Action.NOTIFY, Action.TASK):
        return [m.display_name for m in actions.recipients(rule, event.data)]
    if rule.action == Action.WEBHOOK:
        return [rule.webhook_url]
    return [event.key]


class _Row:
    """An event as the replay reads it: the columns the rule's checks use, and of its data
    only the fields they name (no model instance per event)."""

    __slots__ = ("at", "data", "depth", "key", "object_id", "object_type", "pk", "rule_id")

    def __init__(self, pk, at, key, object_type, object_id, depth, rule_id, data):
        self.pk, self.at, self.key = pk, at, key
        self.object_type, self.object_id = object_type, object_id
        self.depth, self.rule_id, self.data = depth, rule_id, data


def _rows(rule: Rule, *, since: datetime):
    """(event, windowed count or None) for the rule's kind since `since`, each subject's in
    order (at, id), streamed from one statement with binary results, only the columns and
    data fields the replay reads. With a count: `count(*) OVER (PARTITION BY key, the same
    fields ORDER BY at RANGE … PRECEDING)` over the window before `since` too (as
    conditions.window_counts, equal to the engine's per-event count), the rows in (key,
    at, id) order — the window's own sort on key goes on, the subject being the key;
    without, in (at, id) order, the (tenant, kind, at) index's."""
    named = conditions.named_fields(rule.trigger, rule.condition)
    names = list(dict.fromkeys([*named, "owner_id"]))
    fields = "".join(f", data -> %s::text AS f{i}" for i in range(len(names)))
    outer = "".join(f", f{i}" for i in range(len(names)))
    tenant = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint)"
    if rule.count_at_least:
        same = rule.same_fields
        partition = ", ".join(["key", *(["data -> %s::text"] * len(same))])
        sql = (
            f"SELECT id, at, key, NULL, NULL, depth, rule_id{outer}, n FROM ("  # noqa: S608
            f" SELECT id, at, key, depth, rule_id{fields},"
            f"  count(*) OVER (PARTITION BY {partition} ORDER BY at"
            "  RANGE BETWEEN %s PRECEDING AND CURRENT ROW) AS n"
            f" FROM crm_outboxevent WHERE tenant_id = {tenant} AND kind = %s AND at >= %s"
            ") w WHERE at >= %s ORDER BY key, at, id"
        )
        span = timedelta(days=rule.count_days) - timedelta(microseconds=1)
        start = since - timedelta(days=rule.count_days)
        params = [*names, *same, span, rule.trigger, start, since]
    else:
        sql = (
            "SELECT id, at, key, object_type, object_id, depth, rule_id"  # noqa: S608
            f"{fields}, NULL FROM crm_outboxevent"
            f" WHERE tenant_id = {tenant} AND kind = %s AND at >= %s ORDER BY at, id"
        )
        params = [*names, rule.trigger, since]
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as plain:
        # A busy tenant's month sorted in memory, as far as it goes (this transaction only).
        plain.execute("SET LOCAL work_mem = '128MB'")
    width = len(names)
    if connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        cursor = raw.cursor(binary=True)  # behind transaction pooling: fetched at once
    else:
        cursor = raw.cursor(name="automation_dry_run", binary=True)
    with cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(5000):
            for row in chunk:
                data = dict(zip(names, row[7 : 7 + width], strict=True))
                yield _Row(*row[:7], data), row[-1]


def replay(rule: Rule, *, days: int = DAYS, now: datetime | None = None) -> DryRun:
    """Inside the rule's tenant: what `rule` would have done over the last `days`."""
    now = now or timezone.now()
    result = DryRun(days=days)
    state: dict[str, tuple[bool, datetime | None]] = {}
    windows: set[tuple[str, int]] = set()
    names: dict = {}
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    since = now - timedelta(days=days)
    language = get_language()
    named = tuple(conditions.named_fields(rule.trigger, rule.condition))
    evaluate = conditions.evaluate_named
    trigger, condition, at_least = rule.trigger, rule.condition, rule.count_at_least
    for event, count in _rows(rule, since=since):
        result.events += 1
        # engine.judge's checks, inline: its own change, the depth, the condition, the count.
        if (rule.pk is not None and event.rule_id == rule.pk) or event.depth >= MAX_DEPTH:
            continue
        data = event.data
        values = tuple([(name, data.get(name)) for name in named])
        matched = evaluate(trigger, condition, values, language)[0]
        if at_least:
            matched = matched and count >= at_least
        subject = event.key if at_least else engine.subject_of(rule, event)
        was_true, last_fired = state.get(subject, (False, None))
        if not matched:
            if was_true:
                state[subject] = (False, last_fired)
            continue
        at = event.at
        if rule.wait_hours:
            # A clock: it would act at `at`, unless the awaited event came first.
            at = event.at + timedelta(hours=rule.wait_hours)
            if at > now or engine.awaited_between(rule, subject, event.at, at):
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
        who = event.data.get("owner_id") if rule.action in (Action.NOTIFY, Action.TASK) else 0
        if rule.action == Action.SET_LEVEL or who not in names:
            names[who] = _to(rule, event)
        for name in names[who]:
            result.recipients[name] += 1
    return result
