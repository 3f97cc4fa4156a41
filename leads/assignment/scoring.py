"""The lead score (F8): a policy's rules, validated when saved and compiled for speed.

A rule is field + operator + value + points. Rules are compiled once per policy into
predicates over `LeadFacts` (leads.assignment.engine), so scoring a lead is a loop of cheap calls
whether it runs in the worker or in a replay of 100,000 leads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext as _

from leads.models import ChannelType, Industry, ScoreField, ScoreOperator, SourceGrade

# What each field holds, which decides the operators it accepts and how values parse.
FIELD_KINDS = {
    ScoreField.CHANNEL_TYPE: "choice",
    ScoreField.BUDGET: "number",
    ScoreField.MESSAGE: "text",
    ScoreField.COMPANY: "text",
    ScoreField.INDUSTRY: "choice",
    ScoreField.PROVINCE: "text",
    ScoreField.CITY: "text",
    ScoreField.COMPANY_SIZE: "number",
    ScoreField.IN_TENDER: "bool",
    ScoreField.SAMPLE_PROVIDED: "bool",
    ScoreField.TAG: "tag",
    ScoreField.SUSPECT: "bool",
    ScoreField.REVISIT: "bool",
}
CHOICES = {
    ScoreField.CHANNEL_TYPE: ChannelType.values,
    ScoreField.INDUSTRY: Industry.values,
}
OPERATORS_BY_KIND = {
    "number": {ScoreOperator.EQUALS, ScoreOperator.IN, ScoreOperator.GT, ScoreOperator.LT},
    "text": {ScoreOperator.EQUALS, ScoreOperator.IN, ScoreOperator.CONTAINS},
    "choice": {ScoreOperator.EQUALS, ScoreOperator.IN},
    "bool": {ScoreOperator.EQUALS},
    "tag": {ScoreOperator.EQUALS, ScoreOperator.IN},
}
# Operators that name their own subject: no field.
FIELDLESS = {
    ScoreOperator.CHANNEL_IS,
    ScoreOperator.GRADE_IS,
    ScoreOperator.LATE_FIRST_RESPONSE,
}
TRUE_WORDS = {"1", "true", "yes", "y", "是", "有", "真"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "无", "假"}


def split_values(value: str) -> list[str]:
    parts = (value or "").replace("，", ",").replace("、", ",").replace("\n", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


def _number(text: str) -> float:
    from crm.normalize import parse_budget

    try:
        return float(text)
    except ValueError:
        parsed = parse_budget(text)
        if parsed is None:
            raise
        return float(parsed)


def _bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def rule_errors(field: str, operator: str, value: str, *, lookups: bool = True) -> dict[str, str]:
    """What is wrong with a rule, by form field; empty when it can be saved.

    Checks that the operator exists, that the field exists and takes the operator, and
    that the value parses for both (numbers, yes/no, known choices, existing tags and
    channels of the current tenant, unless `lookups` is false).
    """
    from crm.tenancy import current_tenant

    lookups = lookups and current_tenant() is not None

    if operator not in ScoreOperator.values:
        return {"operator": _("Unknown operator “%(op)s”.") % {"op": operator}}
    values = split_values(value)
    if operator in FIELDLESS:
        if field:
            return {"field": _("“%(op)s” needs no field: leave it empty.") % {"op": operator}}
        if not values:
            return {"value": _("A value is needed.")}
        if operator == ScoreOperator.GRADE_IS:
            bad = [v for v in values if v.upper() not in SourceGrade.values]
            if bad:
                return {"value": _("Source grades are A, B or C, not %(bad)s.") % {"bad": bad[0]}}
        elif operator == ScoreOperator.CHANNEL_IS:
            if lookups:
                from leads.models import Channel

                known = set(Channel.objects.values_list("name", flat=True))
                known |= set(Channel.objects.values_list("key", flat=True))
                missing = [v for v in values if v not in known]
                if missing:
                    return {
                        "value": _("No channel named “%(name)s” in this tenant.")
                        % {"name": missing[0]}
                    }
        else:
            try:
                minutes = int(values[0])
            except ValueError:
                minutes = 0
            if len(values) != 1 or minutes <= 0:
                return {"value": _("The number of minutes, e.g. 120.")}
        return {}
    if not field:
        return {"field": _("Choose the field the rule looks at.")}
    kind = FIELD_KINDS.get(field)
    if kind is None:
        return {"field": _("There is no field “%(field)s” on a lead.") % {"field": field}}
    if operator not in OPERATORS_BY_KIND[kind]:
        return {
            "operator": _("“%(op)s” does not apply to %(field)s.")
            % {"op": ScoreOperator(operator).label, "field": ScoreField(field).label}
        }
    if not values:
        return {"value": _("A value is needed.")}
    if operator in (ScoreOperator.EQUALS, ScoreOperator.GT, ScoreOperator.LT) and len(values) > 1:
        return {"value": _("One value only; use “is one of” for a list.")}
    try:
        if kind == "number":
            for v in values:
                _number(v)
        elif kind == "bool":
            _bool(values[0])
    except ValueError:
        expected = _("a number") if kind == "number" else _("yes or no")
        return {
            "value": _("“%(value)s” is not %(expected)s.") % {"value": value, "expected": expected}
        }
    if kind == "choice":
        bad = [v for v in values if v not in CHOICES[field]]
        if bad:
            return {
                "value": _("“%(value)s” is not one of: %(choices)s.")
                % {"value": bad[0], "choices": ", ".join(CHOICES[field])}
            }
    if kind == "tag" and lookups:
        from leads.models import Tag

        known = set(Tag.objects.values_list("name", flat=True))
        missing = [v for v in values if v not in known]
        if missing:
            return {"value": _("No tag named “%(name)s” in this tenant.") % {"name": missing[0]}}
    return {}


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str  # the rule's public id, as recorded in decisions
    label: str
    points: int
    test: Callable  # (facts, now) -> bool


def _field_value(facts, field: str):
    return getattr(facts, field)


def _compile_one(rule) -> Callable:
    operator, field = rule.operator, rule.field
    values = split_values(rule.value)
    if operator == ScoreOperator.GRADE_IS:
        grades = {v.upper() for v in values}
        return lambda f, now: f.source_grade in grades
    if operator == ScoreOperator.CHANNEL_IS:
        names = set(values)
        return lambda f, now: f.channel_name in names or f.channel_key in names
    if operator == ScoreOperator.LATE_FIRST_RESPONSE:
        limit = timedelta(minutes=int(values[0]))

        def late(f, now: datetime) -> bool:
            responded = f.first_touch_at or now
            return responded - f.created_at > limit

        return late
    kind = FIELD_KINDS[field]
    if kind == "number":
        numbers = [_number(v) for v in values]
        target = numbers[0]
        tests = {
            ScoreOperator.EQUALS: lambda x: x == target,
            ScoreOperator.IN: lambda x: x in numbers,
            ScoreOperator.GT: lambda x: x > target,
            ScoreOperator.LT: lambda x: x < target,
        }
        test = tests[operator]
        return lambda f, now: (v := _field_value(f, field)) is not None and test(v)
    if kind == "bool":
        wanted = _bool(values[0])
        return lambda f, now: _field_value(f, field) is wanted
    if kind == "tag":
        names = set(values)
        return lambda f, now: not names.isdisjoint(f.tags)
    if operator == ScoreOperator.CONTAINS:
        keyword = values[0]
        from leads.intake.services import _keyword_matches

        return lambda f, now: (
            bool(_field_value(f, field)) and _keyword_matches(keyword, _field_value(f, field))
        )
    if operator == ScoreOperator.IN:
        options = set(values)
        return lambda f, now: _field_value(f, field) in options
    target = values[0]
    return lambda f, now: _field_value(f, field) == target


def compile_rules(rules: Iterable) -> list[CompiledRule]:
    """Rules that fail validation (saved before a check existed) are skipped, not fatal;
    a tag or channel that no longer exists just never matches."""
    compiled = []
    for rule in rules:
        if rule_errors(rule.field, rule.operator, rule.value, lookups=False):
            continue
        compiled.append(
            CompiledRule(
                rule_id=str(rule.public_id),
                label=str(rule),
                points=rule.points,
                test=_compile_one(rule),
            )
        )
    return compiled


def score_lead(facts, rules: list[CompiledRule], base: int, now: datetime) -> tuple[int, list]:
    """(score, hits): the base plus every matching rule's points, and which rules matched."""
    total, hits = base, []
    for rule in rules:
        if rule.test(facts, now):
            total += rule.points
            hits.append({"rule": rule.rule_id, "label": rule.label, "points": rule.points})
    return total, hits
