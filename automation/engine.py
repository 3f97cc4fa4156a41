"""The rule engine (F47): each new event against the tenant's active rules of its kind,
safe by default. Registered as a consumer of the outbox (crm.events) by AutomationConfig.

Per event and rule, in order: its own change (skipped), the chain depth (stopped at
crm.events.MAX_DEPTH), the condition and windowed count, false → true per subject, the
cool-down, the dedup row, then the action. Every evaluation is logged: a `Run`, or for a
drained event's plain false conditions one `Miss` for all its rules. Three failed
actions in a row pause the rule and tell the tenant's admins. See docs/automation.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from automation import actions, conditions, webhooks
from automation.models import Action, Due, Firing, Outcome, Rule, RuleState, Run, Task
from automation.pause import FAILURES_TO_PAUSE, PAUSED_EVENT, tell_paused
from crm.events import MAX_DEPTH, get_action
from crm.models import OutboxEvent
from crm.notify import notify_many

logger = logging.getLogger(__name__)

__all__ = ["FAILURES_TO_PAUSE", "PAUSED_EVENT", "consume", "due_tenants", "judge", "sweep_due"]


def subject_of(rule: Rule, event: OutboxEvent) -> str:
    """What the rule fires once for: the key a windowed count groups by (the customer),
    else the event's object."""
    if rule.count_at_least:
        return event.key
    return f"{event.object_type.split('.')[-1]}:{event.object_id}"


@dataclass(slots=True)
class Verdict:
    """What a rule makes of one event, before any state: the values logged with it."""

    matched: bool
    values: dict | tuple  # a drained batch keeps the (name, value) items
    count: int | None = None
    detail: str = ""
    skip: str = ""  # an Outcome that ends the evaluation before the condition


def judge(
    rule: Rule, event: OutboxEvent, *, count: int | None = None, language: str | None = None
) -> Verdict:
    """The rule's condition and windowed count on `event` (reads only; `count` when the
    caller has it already, as a drained batch and the dry run do). The condition is
    decided by the values of the fields it names: asked once per distinct values."""
    if rule.pk is not None and event.rule_id == rule.pk:
        return Verdict(False, {}, skip=Outcome.OWN_CHANGE)
    if event.depth >= MAX_DEPTH:
        return Verdict(False, {}, skip=Outcome.DEPTH_LIMIT)
    names = conditions.named_fields(rule.trigger, rule.condition)
    values = {name: event.data.get(name) for name in names}
    matched, detail = conditions.evaluate_named(
        rule.trigger, rule.condition, tuple(values.items()), language or get_language()
    )
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


def _log(rule, event, subject, verdict: Verdict, outcome: str, detail: str = "") -> Run:
    """One run of the due sweep (a drained batch writes its runs in one statement)."""
    return Run.objects.create(
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


def _settle(rule: Rule, event: OutboxEvent, subject: str, verdict: Verdict, now) -> Run:
    """The due sweep's (one clock at a time): false → true, the cool-down, the dedup row,
    then the action in a savepoint with the firing and the state."""
    if not verdict.matched:
        RuleState.objects.filter(rule=rule, subject=subject, is_true=True).update(is_true=False)
        return _log(rule, event, subject, verdict, Outcome.NOT_MATCHED)
    state, _created = RuleState.objects.select_for_update().get_or_create(
        tenant_id=rule.tenant_id, rule=rule, subject=subject
    )
    if state.is_true and not rule.wait_hours:
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
    return awaited_between(rule, due.subject, due.event.at, due.due_at)


def awaited_between(rule: Rule, subject: str, start: datetime, end: datetime) -> bool:
    """`awaited_came` for a subject and a span (after `start`, until `end`)."""
    if not rule.unless_kind:
        return False
    prefix, _sep, pk = subject.partition(":")
    about = Q(key=subject)
    if prefix in ("lead", "customer") and pk.isdigit():
        about |= Q(data__contains={f"{prefix}_id": int(pk)})
    return OutboxEvent.objects.filter(
        about, kind=rule.unless_kind, at__gt=start, at__lte=end
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


# The tenants whose sweep has clocks to act on: per active tenant, one probe of the
# partial index due_open (tenant, due_at) WHERE done_at IS NULL for its first due row
# (LIMIT 1 in a LATERAL subquery: always that probe, never a scan of every open clock,
# which counts the clocks of the days ahead too). Its cost follows the tenants, not the
# clocks.
DUE_TENANTS_SQL = f"""
SELECT t.id FROM crm_tenant t
CROSS JOIN LATERAL (
  SELECT 1 FROM {Due._meta.db_table} d
  WHERE d.tenant_id = t.id AND d.done_at IS NULL AND d.due_at <= %(now)s
  LIMIT 1) due
WHERE t.is_active
ORDER BY t.id
"""  # noqa: S608 — the table's name only


def due_tenants(now: datetime | None = None) -> list[int]:
    """The active tenants with a time condition due now (a `Due` not done whose `due_at`
    has come: what `sweep_due` would claim), in id order. A platform job that reads
    tenant ids only; each tenant's sweep then runs inside its own tenant. One statement
    whatever the number of tenants: the minute's fan-out queues a sweep for these only."""
    from django.db import connections

    from crm.tenancy import PLATFORM, all_tenants_context, current_tenant

    if current_tenant() is not None:
        raise RuntimeError("the due sweep's fan-out runs outside any tenant")
    with all_tenants_context(), connections[PLATFORM].cursor() as cursor:
        cursor.execute(DUE_TENANTS_SQL, {"now": now or timezone.now()})
        return [row[0] for row in cursor.fetchall()]


def _failed(rule: Rule, error: str, now: datetime) -> None:
    rule.consecutive_failures += 1
    rule.last_error = error[:500]
    fields = ["consecutive_failures", "last_error"]
    if rule.consecutive_failures >= FAILURES_TO_PAUSE and rule.paused_at is None:
        rule.paused_at = now
        fields.append("paused_at")
        logger.warning("automation rule %s paused: %s", rule.pk, error)
        tell_paused(rule, error)
    rule.save(update_fields=fields)


# --- The drained batch, set-based ------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """A (rule, event) whose run is being decided in the batch: its run's columns."""

    rule: Rule
    event: OutboxEvent
    subject: str
    verdict: Verdict
    outcome: str
    detail: str = ""


@dataclass(slots=True)
class _State:
    is_true: bool
    last_fired_at: datetime | None
    dirty: bool = False


class _Batch:
    """What `consume` keeps while it decides a drained batch in memory: the rules' states
    and firings known, the recipients looked up, the rows to write at the end."""

    def __init__(self, now: datetime):
        self.now = now
        self.states: dict[tuple[int, str], _State] = {}
        self.windows: set[tuple[int, str, int]] = set()  # firings known (dedup keys)
        self.runs: list[_Pending] = []
        self.firings: list[_Pending] = []  # firings of the deferred actions, in order
        self.windows_of: dict[int, int] = {}  # id(pending) → its dedup window
        self.prior: dict[tuple[int, str], datetime | None] = {}  # last_fired_at before
        self.dues: list[Due] = []
        self.members: dict[tuple, list] = {}
        self.webhook_errors: dict[int, str] = {}
        self.rules_changed: dict[int, Rule] = {}
        # Per event: its rules whose condition was false, with their windowed counts.
        self.misses: dict[int, tuple[OutboxEvent, list[int], list[int | None]]] = {}
        self.place: dict[int, int] = {}  # event id → its place in the batch (the log's clock)
        self.true_subjects: set[str] = set()  # subjects with a true state (a superset)
        self.paused = False  # whether a rule was paused during the batch

    def state(self, rule: Rule, subject: str) -> _State:
        pair = (rule.pk, subject)
        state = self.states.get(pair)
        if state is None:
            state = self.states[pair] = _State(False, None)
        return state

    def recipients(self, rule: Rule, data: dict) -> list:
        """actions.recipients(), looked up once per addressee in the batch (rules that
        tell the same role share it)."""
        owner = data.get("owner_id") if rule.to_owner else None
        key = (owner, rule.to_role, rule.to_member_id)
        if key not in self.members:
            self.members[key] = actions.recipients(rule, data)
        return self.members[key]

    def webhook_error(self, rule: Rule) -> str:
        """Why the rule's webhook address is refused before any call ("" when not)."""
        if rule.pk not in self.webhook_errors:
            try:
                actions.check_webhook(rule)
                self.webhook_errors[rule.pk] = ""
            except actions.ActionError as exc:
                self.webhook_errors[rule.pk] = str(exc)
        return self.webhook_errors[rule.pk]


@dataclass(slots=True)
class _Step:
    """One event of a drained batch as `_plan` leaves it: the (rule, subject, verdict)
    triples to decide one by one, and the rules whose plain condition was false on it,
    which need no more than a line in its `Miss` (and any true state of theirs reset)."""

    event: OutboxEvent
    own: str  # the event's own subject ("ticket:12")
    pairs: list[tuple[Rule, str, Verdict]]
    missed: list[Rule]  # rules with a condition only: about `own`, no count
    missed_counted: list[tuple[Rule, int]]  # windowed counts: about the key, with the count


def _plan(events: list[OutboxEvent], by_kind: dict[str, list[Rule]]) -> list[_Step]:
    """Every event against the live rules of its kind, as `judge` would: the windowed
    counts in one statement per (kind, days, same fields) for the whole batch, and the
    rules with a condition only grouped by the fields they name, so each group is
    evaluated once per distinct values in the batch (fifty rules on a thousand events are
    a few hundred evaluations, not fifty thousand). The values logged are kept as items
    and serialised once per distinct values (`_json`)."""
    language = get_language()
    counted: dict[str, list[tuple]] = {}
    groups: dict[str, dict[tuple, list[Rule]]] = {}
    counts: dict[tuple, dict[int, int]] = {}
    for kind, rules in by_kind.items():
        ids = [e.pk for e in events if e.kind == kind]
        for rule in rules:
            names = tuple(conditions.named_fields(rule.trigger, rule.condition))
            if not rule.count_at_least:
                groups.setdefault(kind, {}).setdefault(names, []).append(rule)
                continue
            same = tuple(rule.same_fields)
            group = (kind, rule.count_days, same)
            if group not in counts:
                counts[group] = conditions.batch_window_counts(
                    ids, days=rule.count_days, same=list(same)
                )
            shown = tuple(dict.fromkeys(names + same))
            counted.setdefault(kind, []).append((rule, names, shown, counts[group]))
    evaluate = conditions.evaluate_named
    # (kind, names, values) → (true rules, rules not evaluated with why, false rules)
    decided: dict[tuple, tuple[list, list, list]] = {}
    steps = []
    for event in events:
        data = event.data
        own = f"{event.object_type.split('.')[-1]}:{event.object_id}"
        step = _Step(event, own, [], [], [])
        steps.append(step)
        pairs = step.pairs
        if event.depth >= MAX_DEPTH:
            everyone = [(r, own) for rules in groups.get(event.kind, {}).values() for r in rules]
            everyone += [(r, event.key) for r, *_rest in counted.get(event.kind, ())]
            for rule, subject in everyone:
                skip = Outcome.OWN_CHANGE if rule.pk == event.rule_id else Outcome.DEPTH_LIMIT
                pairs.append((rule, subject, Verdict(False, {}, skip=skip)))
            continue
        for names, rules in groups.get(event.kind, {}).items():
            items = tuple([(name, data.get(name)) for name in names])
            key = (event.kind, names, items)
            split = decided.get(key)
            if split is None:
                split = decided[key] = ([], [], [])
                for rule in rules:
                    matched, detail = evaluate(rule.trigger, rule.condition, items, language)
                    if matched:
                        split[0].append(rule)
                    elif detail:
                        split[1].append((rule, detail))
                    else:
                        split[2].append(rule)
            true, errors, false = split
            if event.rule_id is not None and any(r.pk == event.rule_id for r in rules):
                # The rule's own change: a run saying so, whatever its condition.
                own_rule = next(r for r in rules if r.pk == event.rule_id)
                pairs.append((own_rule, own, Verdict(False, {}, skip=Outcome.OWN_CHANGE)))
                true = [r for r in true if r is not own_rule]
                errors = [(r, d) for r, d in errors if r is not own_rule]
                false = [r for r in false if r is not own_rule]
            pairs.extend((rule, own, Verdict(True, items, None, "")) for rule in true)
            pairs.extend((rule, own, Verdict(False, items, None, d)) for rule, d in errors)
            step.missed.extend(false)
        for rule, names, shown, by_event in counted.get(event.kind, ()):
            if event.rule_id == rule.pk:
                pairs.append((rule, event.key, Verdict(False, {}, skip=Outcome.OWN_CHANGE)))
                continue
            items = tuple([(name, data.get(name)) for name in names])
            matched, detail = evaluate(rule.trigger, rule.condition, items, language)
            count = by_event[event.pk]
            matched = matched and count >= rule.count_at_least
            if not matched and not detail:
                step.missed_counted.append((rule, count))
                continue
            if shown != names:
                items = tuple([(name, data.get(name)) for name in shown])
            pairs.append((rule, event.key, Verdict(matched, items, count, detail)))
    return steps


_JSON: dict[tuple, str] = {}


def _json(values) -> str:
    """The run's logged values as JSON text, once per distinct values (they repeat)."""
    if isinstance(values, dict):
        return json.dumps(values, ensure_ascii=False)
    text = _JSON.get(values)
    if text is None:
        if len(_JSON) > 10_000:
            _JSON.clear()
        text = _JSON[values] = json.dumps(dict(values), ensure_ascii=False)
    return text


def _load(batch: _Batch, steps: list[_Step], rule_ids: set[int]) -> None:
    """The states of the batch's (rule, subject) pairs, read and locked in one statement,
    and the firings already made in the windows the batch can fire in."""
    subjects = {step.own for step in steps} | {step.event.key for step in steps}
    rows = (
        RuleState.objects.select_for_update()
        .filter(rule_id__in=rule_ids, subject__in=subjects)
        .values_list("rule_id", "subject", "is_true", "last_fired_at")
    )
    for rule_id, subject, is_true, last_fired_at in rows:
        batch.states[(rule_id, subject)] = _State(is_true, last_fired_at)
        if is_true:
            batch.true_subjects.add(subject)
    # Dedup windows: for each rule that may fire, the buckets the batch's events fall in.
    ranges: dict[int, tuple[int, int]] = {}
    matched_subjects: set[str] = set()
    for step in steps:
        for rule, subject, verdict in step.pairs:
            if not verdict.matched or not rule.cooldown_minutes or rule.wait_hours:
                continue
            window = window_of(rule, step.event.at, step.event.pk)
            lo, hi = ranges.get(rule.pk, (window, window))
            ranges[rule.pk] = (min(lo, window), max(hi, window))
            matched_subjects.add(subject)
    if ranges:
        within = Q()
        for rule_id, (lo, hi) in ranges.items():
            within |= Q(rule_id=rule_id, window__gte=lo, window__lte=hi)
        batch.windows.update(
            Firing.objects.filter(within, subject__in=matched_subjects).values_list(
                "rule_id", "subject", "window"
            )
        )


def _missed(batch: _Batch, step: _Step) -> None:
    """The rules whose plain condition was false on the step's event: a line each in its
    `Miss`, and a true state of theirs about the subject made false (so the next true
    fires again)."""
    plain, counted = step.missed, step.missed_counted
    if batch.paused:  # a rule paused by an earlier event of the batch is not live now
        plain = [r for r in plain if r.paused_at is None]
        counted = [(r, n) for r, n in counted if r.paused_at is None]
    if not plain and not counted:
        return
    for subject, rules in ((step.own, plain), (step.event.key, [r for r, _n in counted])):
        if rules and subject in batch.true_subjects:
            for rule in rules:
                state = batch.states.get((rule.pk, subject))
                if state is not None and state.is_true:
                    state.is_true, state.dirty = False, True
    entry = batch.misses.get(step.event.pk)
    if entry is None:
        entry = batch.misses[step.event.pk] = (step.event, [], [])
    entry[1].extend([rule.pk for rule in plain] + [rule.pk for rule, _n in counted])
    entry[2].extend([None] * len(plain) + [n for _r, n in counted])


def _fail(batch: _Batch, rule: Rule, error: str) -> None:
    """A failed action in the batch: counted on the rule, paused at the third in a row."""
    rule.consecutive_failures += 1
    rule.last_error = error[:500]
    batch.rules_changed[rule.pk] = rule
    if rule.consecutive_failures >= FAILURES_TO_PAUSE and rule.paused_at is None:
        rule.paused_at = batch.now
        batch.paused = True
        logger.warning("automation rule %s paused: %s", rule.pk, error)
        tell_paused(rule, error)


def _decide(batch: _Batch, event, rule: Rule, subject: str, verdict: Verdict) -> str | None:
    """The safe defaults for one (event, rule) in the batch's order, in memory: the
    outcome, or None when the rule is paused (no run, as if it were not live)."""
    if rule.paused_at is not None:
        return None  # paused by an earlier event of this batch
    pending = _Pending(rule, event, subject, verdict, verdict.skip)
    if verdict.skip:
        batch.runs.append(pending)
        return pending.outcome
    if not verdict.matched:
        state = batch.states.get((rule.pk, subject))
        if state is not None and state.is_true:
            state.is_true, state.dirty = False, True
        # Not evaluated (say, a type error): a run with the reason. (A plain false
        # condition never gets here: `_plan` left it to the event's `Miss`.)
        pending.outcome = Outcome.NOT_MATCHED
        batch.runs.append(pending)
        return Outcome.NOT_MATCHED
    batch.runs.append(pending)
    if rule.wait_hours:
        due_at = event.at + timedelta(hours=rule.wait_hours)
        batch.dues.append(
            Due(tenant_id=rule.tenant_id, rule=rule, event=event, subject=subject, due_at=due_at)
        )
        pending.outcome = Outcome.WAITING
        pending.detail = timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M")
        return pending.outcome
    state = batch.state(rule, subject)
    if state.is_true:
        pending.outcome = Outcome.STILL_TRUE
        return pending.outcome
    state.is_true, state.dirty = True, True  # whatever follows leaves it true
    batch.true_subjects.add(subject)
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    if state.last_fired_at is not None and batch.now < state.last_fired_at + cooldown:
        pending.outcome = Outcome.COOLDOWN
        return pending.outcome
    window = window_of(rule, event.at, event.pk)
    if (rule.pk, subject, window) in batch.windows:
        pending.outcome = Outcome.DUPLICATE
        return pending.outcome
    inline = _inline(rule)
    if inline:
        # Changes data and emits events: done now, in a savepoint with its firing.
        run = _settle_inline(rule, event, subject, window, batch.now)
        pending.outcome, pending.detail = run
    else:
        pending.outcome, pending.detail = _check_deferred(batch, rule, event)
    if pending.outcome == Outcome.FAILED:
        # Nothing was written: the next event may try again.
        state.is_true = False
        _fail(batch, rule, pending.detail)
        return pending.outcome
    if pending.outcome == Outcome.DUPLICATE:
        return pending.outcome
    batch.windows.add((rule.pk, subject, window))
    batch.prior.setdefault((rule.pk, subject), state.last_fired_at)
    state.last_fired_at = batch.now
    if not inline:
        batch.windows_of[id(pending)] = window
        batch.firings.append(pending)
    if rule.consecutive_failures:
        rule.consecutive_failures, rule.last_error = 0, ""
        batch.rules_changed[rule.pk] = rule
    return pending.outcome


def _inline(rule: Rule) -> bool:
    """Set level and the apps' actions (crm.events.register_action) change data and emit
    events: each is done at once, in a savepoint with its firing, not with the batch."""
    return rule.action == Action.SET_LEVEL or get_action(rule.action) is not None


def _check_deferred(batch: _Batch, rule: Rule, event) -> tuple[str, str]:
    """Whether a notify, task or webhook action can be done (it is written with the
    batch's others at its end): (fired, to whom) or (failed, why)."""
    if rule.action in (Action.NOTIFY, Action.TASK):
        members = batch.recipients(rule, event.data)
        if not members:
            return Outcome.FAILED, str(_("Nobody to send it to (no active member matches)."))
        return Outcome.FIRED, ", ".join(m.display_name for m in members)[:500]
    if rule.action == Action.WEBHOOK:
        error = batch.webhook_error(rule)
        if error:
            return Outcome.FAILED, error
        return Outcome.FIRED, str(_("queued"))
    return Outcome.FAILED, str(_("Unknown action %(action)s.") % {"action": rule.action})


def _settle_inline(rule: Rule, event, subject: str, window: int, now) -> tuple[str, str]:
    try:
        with transaction.atomic():
            _firing, fresh = Firing.objects.get_or_create(
                tenant_id=rule.tenant_id,
                rule=rule,
                subject=subject,
                window=window,
                defaults={"at": now},
            )
            if not fresh:
                return Outcome.DUPLICATE, ""
            return Outcome.FIRED, actions.run(rule, event, subject)
    except actions.ActionError as exc:
        return Outcome.FAILED, str(exc)


_FIRING_SQL = """
INSERT INTO automation_firing (tenant_id, public_id, rule_id, subject, "window", at)
SELECT %b, gen_random_uuid(), r, s, w, %b FROM unnest(%b::bigint[], %b::text[], %b::bigint[])
    AS t(r, s, w)
ON CONFLICT (tenant_id, rule_id, subject, "window") DO NOTHING
RETURNING rule_id, subject, "window"
"""

# The batch's runs as one JSON array of rows ([rule, event, kind, subject, values, count,
# matched, outcome, detail, place]), unpacked by the server: one parameter, whatever the
# rows. A run's time is the batch's, plus its event's place in microseconds (as a miss's).
_RUN_SQL = """
INSERT INTO automation_run
    (tenant_id, public_id, rule_id, event_id, kind, subject, at, "values", count, matched,
     outcome, detail)
SELECT %b, gen_random_uuid(), (x ->> 0)::bigint, (x ->> 1)::bigint, x ->> 2, x ->> 3,
       %b + (x ->> 9)::int * interval '1 microsecond', (x -> 4)::jsonb, (x ->> 5)::int,
       (x ->> 6)::bool, x ->> 7, x ->> 8
FROM json_array_elements(%s::json) AS t(x)
"""

# The batch's misses, one row per event, its rules and counts as array literals.
_MISS_SQL = """
INSERT INTO automation_miss
    (tenant_id, public_id, event_id, kind, key, object, at, rules, counts)
SELECT %b, gen_random_uuid(), e, k, ky, ob, %b + p * interval '1 microsecond',
       r::bigint[], c::int[]
FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::int[], %b::text[],
            %b::text[]) AS t(e, k, ky, ob, p, r, c)
"""


def _bound_cursor() -> psycopg.Cursor:
    """A cursor on the connection's session (so in its transaction) that binds the
    parameters on the server, in binary (`%b`): a batch's columns go as arrays, with no
    quoting of tens of thousands of values into the statement's text."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _write_firings(batch: _Batch, tenant_id: int) -> None:
    """The dedup rows of the deferred firings, in one INSERT … ON CONFLICT DO NOTHING: a
    row another worker inserted first (its evaluation of the same change) makes that
    firing a duplicate, whose action is not done."""
    if not batch.firings:
        return
    keys = [(p.rule.pk, p.subject, batch.windows_of[id(p)]) for p in batch.firings]
    with _bound_cursor() as cursor:
        cursor.execute(
            _FIRING_SQL,
            [
                tenant_id,
                batch.now,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
            ],
        )
        inserted = set(cursor.fetchall())
    if len(inserted) == len(keys):
        return
    kept = []
    for pending, key in zip(batch.firings, keys, strict=True):
        if key in inserted:
            kept.append(pending)
            continue
        pending.outcome, pending.detail = Outcome.DUPLICATE, ""
        pair = (pending.rule.pk, pending.subject)
        state = batch.states[pair]
        state.last_fired_at = batch.prior.get(pair, state.last_fired_at)
    batch.firings = kept


def _act(batch: _Batch) -> None:
    """The deferred actions of the batch's firings, a few statements for all: the
    notifications through crm.notify.notify_many, the tasks and the webhook calls
    (sent by a worker after the commit) in one INSERT each."""
    notes, tasks, calls = [], [], []
    for pending in batch.firings:
        rule, event, subject = pending.rule, pending.event, pending.subject
        if rule.action == Action.NOTIFY:
            notes.append(
                (
                    batch.recipients(rule, event.data),
                    {"rule": rule.name, "message": actions.text(rule), "subject": subject},
                    "",
                )
            )
        elif rule.action == Action.TASK:
            tasks.extend(
                Task(
                    tenant_id=rule.tenant_id,
                    rule=rule,
                    assignee=m,
                    title=actions.text(rule)[:200],
                    subject=subject,
                    created_at=batch.now,
                )
                for m in batch.recipients(rule, event.data)
            )
        elif rule.action == Action.WEBHOOK:
            calls.append(webhooks.call_row(rule, event, subject, now=batch.now))
    if notes:
        notify_many(event=actions.FIRED_EVENT, calls=notes)
    if tasks:
        Task.objects.bulk_create(tasks, batch_size=2000)
    if calls:
        webhooks.queue(calls)


def _write(batch: _Batch, tenant_id: int) -> None:
    """The batch's clocks, states, rules and run log, one statement each."""
    if batch.dues:
        Due.objects.bulk_create(batch.dues, ignore_conflicts=True)
    dirty = [(pair, s) for pair, s in batch.states.items() if s.dirty]
    if dirty:
        RuleState.objects.bulk_create(
            [
                RuleState(
                    tenant_id=tenant_id,
                    rule_id=rule_id,
                    subject=subject,
                    is_true=state.is_true,
                    last_fired_at=state.last_fired_at,
                )
                for (rule_id, subject), state in dirty
            ],
            update_conflicts=True,
            unique_fields=["tenant", "rule", "subject"],
            update_fields=["is_true", "last_fired_at"],
            batch_size=2000,
        )
    for rule in batch.rules_changed.values():
        Rule.objects.filter(pk=rule.pk).update(
            consecutive_failures=rule.consecutive_failures,
            last_error=rule.last_error,
            paused_at=rule.paused_at,
        )
    if batch.runs:
        text: dict = {}  # the JSON of each distinct string, once

        def quoted(value: str) -> str:
            out = text.get(value)
            if out is None:
                out = text[value] = json.dumps(value, ensure_ascii=False)
            return out

        rows = []
        for p in batch.runs:
            verdict = p.verdict
            count = "null" if verdict.count is None else str(verdict.count)
            matched = "null" if verdict.skip else ("true" if verdict.matched else "false")
            rows.append(
                f"[{p.rule.pk},{p.event.pk},{quoted(p.event.kind)},{quoted(p.subject)},"
                f"{_json(verdict.values)},{count},{matched},{quoted(p.outcome)},"
                f"{quoted((p.detail or verdict.detail)[:500])},{batch.place[p.event.pk]}]"
            )
        with _bound_cursor() as cursor:
            cursor.execute(_RUN_SQL, [tenant_id, batch.now, "[" + ",".join(rows) + "]"])
    if batch.misses:
        columns: list[list] = [[], [], [], [], [], [], []]
        for event, rule_ids, counts in batch.misses.values():
            for column, value in zip(
                columns,
                (
                    event.pk,
                    event.kind,
                    event.key,
                    f"{event.object_type.split('.')[-1]}:{event.object_id}",
                    batch.place[event.pk],
                    "{" + ",".join(map(str, rule_ids)) + "}",
                    "{" + ",".join("NULL" if c is None else str(c) for c in counts) + "}",
                ),
                strict=True,
            ):
                column.append(value)
        with _bound_cursor() as cursor:
            cursor.execute(_MISS_SQL, [tenant_id, batch.now, *columns])


def consume(events: list[OutboxEvent]) -> None:
    """The outbox consumer, set-based: every event against the live rules of its kind,
        decided in the batch's order in memory (conditions, windowed counts, false → true,
        cool-down, dedup, failures) from states and firings read once, then written with a
        few statements for the whole batch: dedup rows by INSERT … ON CONFLICT, states by an
        upsert, notifications, tasks and webhook calls in bulk, the run log in one INSERT (and
    the conditions found false in another, a row per event)."""
    kinds = {e.kind for e in events}
    by_kind: dict[str, list[Rule]] = {}
    for rule in Rule.objects.filter(trigger__in=kinds, is_active=True, paused_at__isnull=True):
        by_kind.setdefault(rule.trigger, []).append(rule)
    if not by_kind:
        return
    tenant_id = next(iter(by_kind.values()))[0].tenant_id
    batch = _Batch(timezone.now())
    batch.place = {event.pk: place for place, event in enumerate(events)}
    steps = _plan(events, by_kind)
    _load(batch, steps, {rule.pk for rules in by_kind.values() for rule in rules})
    for step in steps:
        if step.missed or step.missed_counted:
            _missed(batch, step)
        for rule, subject, verdict in step.pairs:
            _decide(batch, step.event, rule, subject, verdict)
    _write_firings(batch, tenant_id)
    _act(batch)
    _write(batch, tenant_id)
