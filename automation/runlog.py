"""The run log as one list: a rule's `Run` rows and its entries in the events' `Miss`
rows ("condition false"), each shown as a run with the values the condition read (from the
event's data) and its windowed count."""

from __future__ import annotations

from django.db.models import Q

from automation import conditions
from automation.models import Miss, Outcome, Rule, Run
from crm.models import OutboxEvent


def shown_fields(rule: Rule) -> list[str]:
    """The event fields a run of `rule` logs: those its condition names, then the fields a
    windowed count groups by."""
    names = list(conditions.named_fields(rule.trigger, rule.condition))
    if rule.count_at_least:
        names += [name for name in rule.same_fields if name not in names]
    return names


def misses_of(rule: Rule, subject: str | None = None):
    """The `Miss` rows that hold a "condition false" of `rule` (about `subject`)."""
    rows = Miss.objects.filter(rules__contains=[rule.pk], kind=rule.trigger)
    if subject is not None:
        rows = rows.filter(Q(key=subject) if rule.count_at_least else Q(object=subject))
    return rows


def as_runs(rule: Rule, misses: list[Miss]) -> list[Run]:
    """Each of `misses` as the (unsaved) run of `rule` it stands for."""
    names = shown_fields(rule)
    data = dict(
        OutboxEvent.objects.filter(pk__in={m.event_id for m in misses if m.event_id}).values_list(
            "pk", "data"
        )
    )
    runs = []
    for miss in misses:
        position = miss.rules.index(rule.pk)
        values = data.get(miss.event_id)
        runs.append(
            Run(
                tenant_id=miss.tenant_id,
                rule=rule,
                event_id=miss.event_id,
                kind=miss.kind,
                subject=miss.key if rule.count_at_least else miss.object,
                at=miss.at,
                values={} if values is None else {name: values.get(name) for name in names},
                count=miss.counts[position] if position < len(miss.counts) else None,
                matched=False,
                outcome=Outcome.NOT_MATCHED,
            )
        )
    return runs


def history(rule: Rule, subject: str | None = None, *, latest: int | None = None) -> list[Run]:
    """`rule`'s runs (about `subject`), oldest first; the `latest` ones only when given
    (then newest first). Inside the rule's tenant."""
    runs = Run.objects.filter(rule=rule)
    misses = misses_of(rule, subject)
    if subject is not None:
        runs = runs.filter(subject=subject)
    if latest is not None:
        logged = list(runs.order_by("-at", "-id")[:latest])
        missed = as_runs(rule, list(misses.order_by("-at", "-id")[:latest]))
        merged = sorted(logged + missed, key=_order, reverse=True)
        return merged[:latest]
    logged = list(runs.order_by("at", "id"))
    missed = as_runs(rule, list(misses.order_by("at", "id")))
    return sorted(logged + missed, key=_order)


def _order(run: Run) -> tuple:
    # Runs and misses of one batch share its clock, offset by the event's place in it.
    return (run.at, run.event_id or 0, run.pk or 0)
