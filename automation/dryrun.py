"""The dry run (F47): a rule, saved or a draft, replayed over the last 30 days of its
event's log as the engine would have run it (false → true, cool-down, dedup, a time
condition's wait and the event that cancels it), writing nothing: how many times it
would have fired, for which subjects, to whom."""

from __future__ import annotations

import json
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
    if rule.action in (Action.NOTIFY, Action.TASK) or (
        rule.action not in Action.values and (rule.to_owner or rule.to_role or rule.to_member_id)
    ):
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


# A condition is turned into SQL when the events show at most this many distinct values of
# the fields it names (each evaluated once here); beyond, the events are streamed.
DISTINCT_VALUES = 5000
_TENANT = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint)"


def _true_values(rule: Rule, since: datetime) -> list[str] | None:
    """The distinct values of the fields the condition names (as JSON arrays) for which it
    is true, over the events replayed; None when they are too many to list."""
    named = conditions.named_fields(rule.trigger, rule.condition)
    values = ", ".join(["data -> %s::text"] * len(named))
    sql = (
        f"SELECT DISTINCT jsonb_build_array({values}) FROM crm_outboxevent"  # noqa: S608
        f" WHERE tenant_id = {_TENANT} AND kind = %s AND at >= %s LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*named, rule.trigger, since, DISTINCT_VALUES + 1])
        rows = [json.loads(v) if isinstance(v, str) else v for (v,) in cursor.fetchall()]
    if len(rows) > DISTINCT_VALUES:
        return None
    language = get_language()
    return [
        json.dumps(row)
        for row in rows
        if conditions.evaluate_named(
            rule.trigger, rule.condition, tuple(zip(named, row, strict=True)), language
        )[0]
    ]


def _candidates(rule: Rule, *, since: datetime):
    """Set-based: (events read, the events where the rule would turn true), from SQL — the
    condition as a list of its true values, the count as a window, false → true as `lag`
    over each subject's events (every true one for a time condition, which re-arms) — in
    each subject's order; None when the condition's values are too many to list."""
    params: list = []
    condition = "TRUE"
    if rule.condition.strip():
        true_values = _true_values(rule, since)
        if true_values is None:
            return None
        named = conditions.named_fields(rule.trigger, rule.condition)
        values = ", ".join(["data -> %s::text"] * len(named))
        condition = f"jsonb_build_array({values}) = ANY(%s::jsonb[])"
        params += [*named, true_values]
    if rule.count_at_least:
        same = rule.same_fields
        partition = ", ".join(["key", *(["data -> %s::text"] * len(same))])
        count = (
            f"count(*) OVER (PARTITION BY {partition} ORDER BY at"
            " RANGE BETWEEN %s PRECEDING AND CURRENT ROW)"
        )
        params += [*same, timedelta(days=rule.count_days) - timedelta(microseconds=1)]
        start = since - timedelta(days=rule.count_days)
        subject = "key"
    else:
        count, start, subject = "NULL::bigint", since, "object_type, object_id"
    turned = "m" if rule.wait_hours else "m AND prev IS NOT TRUE"
    # The owner only when it picks the recipients: the sorts then carry no `data`.
    by_owner = rule.to_owner and rule.action in (Action.NOTIFY, Action.TASK)
    owner = "data -> 'owner_id'" if by_owner else "NULL::jsonb"
    sql = (
        "SELECT id, at, key, object_type, object_id, owner, n FROM ("  # noqa: S608
        f" SELECT *, lag(m) OVER (PARTITION BY {subject} ORDER BY at, id) AS prev FROM ("
        "  SELECT *, c AND (%s::int IS NULL OR n >= %s::int) AS m FROM ("
        "   SELECT id, at, key, object_type, object_id, depth, rule_id,"
        f"   {owner} AS owner, {condition} AS c, {count} AS n"
        f"   FROM crm_outboxevent WHERE tenant_id = {_TENANT} AND kind = %s AND at >= %s"
        "  ) w WHERE at >= %s AND depth < %s"
        "  AND (%s::bigint IS NULL OR rule_id IS DISTINCT FROM %s)"
        " ) s"
        f") e WHERE {turned} ORDER BY {subject}, at, id"
    )
    at_least = rule.count_at_least
    params = [
        at_least,
        at_least,
        *params,
        rule.trigger,
        start,
        since,
        MAX_DEPTH,
        rule.pk,
        rule.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM crm_outboxevent WHERE tenant_id = {_TENANT}"  # noqa: S608
            " AND kind = %s AND at >= %s",
            [rule.trigger, since],
        )
        read = cursor.fetchone()[0]
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(sql, params)
        rows = [
            (_Row(pk, at, key, otype, oid, 0, None, {"owner_id": owner}), n)
            for pk, at, key, otype, oid, owner, n in cursor.fetchall()
        ]
    return read, rows


def replay(rule: Rule, *, days: int = DAYS, now: datetime | None = None) -> DryRun:
    """Inside the rule's tenant: what `rule` would have done over the last `days`. Set-based
    (`_candidates`) unless the condition's values are too many to list; then the events
    are streamed and judged one by one (`_replay_streamed`)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    found = _candidates(rule, since=since)
    if found is None:
        return _replay_streamed(rule, days=days, now=now)
    result = DryRun(days=days, events=found[0])
    fired_at: dict[str, datetime] = {}
    windows: set[tuple[str, int]] = set()
    names: dict = {}
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    for event, _count in found[1]:
        subject = event.key if rule.count_at_least else engine.subject_of(rule, event)
        at = event.at
        if rule.wait_hours:
            at = event.at + timedelta(hours=rule.wait_hours)
            if at > now or engine.awaited_between(rule, subject, event.at, at):
                continue
        last_fired = fired_at.get(subject)
        if last_fired is not None and at < last_fired + cooldown:
            continue
        window = (subject, engine.window_of(rule, event.at, event.pk))
        if window in windows:
            continue
        windows.add(window)
        fired_at[subject] = at
        _fired(rule, result, subject, event, names)
    return result


def _fired(rule: Rule, result: DryRun, subject: str, event, names: dict) -> None:
    result.fired += 1
    result.subjects[subject] += 1
    # Who: depends on the event only through its owner (notify, task) or its key.
    # An app's action (crm.events.register_action) goes to the owner too.
    by_owner = rule.action in (Action.NOTIFY, Action.TASK) or rule.action not in Action.values
    who = event.data.get("owner_id") if by_owner else 0
    if rule.action == Action.SET_LEVEL or who not in names:
        names[who] = _to(rule, event)
    for name in names[who]:
        result.recipients[name] += 1


def _replay_streamed(rule: Rule, *, days: int = DAYS, now: datetime | None = None) -> DryRun:
    """`replay` event by event, for a condition whose values are too many to list."""
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
        _fired(rule, result, subject, event, names)
    return result
