"""The lead score (F8): a policy's rules, validated when saved and compiled for speed.

A rule is field + operator + value + points. Rules are compiled once per policy into
predicates over `LeadFacts` (leads.assignment.engine), so scoring a lead is a loop of cheap calls
whether it runs in the worker or in a replay of 100,000 leads. The validation
(`rule_errors`) lives with the models, in leads.models.score_rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from crm.normalize import keyword_matches
from leads.models.choices import ScoreOperator
from leads.models.score_rules import FIELD_KINDS, _bool, _number, rule_errors, split_values


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
        return lambda f, now: (
            bool(_field_value(f, field)) and keyword_matches(keyword, _field_value(f, field))
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
