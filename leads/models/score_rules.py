"""A score rule's validation (F8): which fields, operators and values a rule may have.

`ScoreRule.clean` checks a rule with `rule_errors` when it is saved, and the compiler in
leads.assignment.scoring skips rules that fail it; both read it from here, so the models
need nothing from the scoring code.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from customers.models import Industry
from leads.models.choices import ChannelType, ScoreField, ScoreOperator, SourceGrade
from leads.models.intake import Channel, Tag

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
        known = set(Tag.objects.values_list("name", flat=True))
        missing = [v for v in values if v not in known]
        if missing:
            return {"value": _("No tag named “%(name)s” in this tenant.") % {"name": missing[0]}}
    return {}
