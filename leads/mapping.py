"""Field mapping (F3): dotted source paths → lead fields, with value maps and defaults.

A channel's rules are a list of
    {"field": "company_size", "path": "form.size", "map": {"1-50人": 1}, "default": null}
applied over the preset's rules for the same field. With no preset and no rules the
payload's keys are taken as lead field names (the hosted form and the generic webhook).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from leads.models import Industry, MappingPreset

TEXT, INT, BOOL, INDUSTRY = "text", "int", "bool", "industry"

# Every field a rule may write, and how its value is read.
FIELDS: dict[str, str] = {
    "company": TEXT,
    "contact_name": TEXT,
    "phone": TEXT,
    "industry": INDUSTRY,
    "message": TEXT,
    "industry_remark": TEXT,
    "email": TEXT,
    "title": TEXT,
    "province": TEXT,
    "city": TEXT,
    "company_size": INT,
    "budget": TEXT,
    "in_tender": BOOL,
    "sample_provided": BOOL,
    "external_id": TEXT,
    "utm_source": TEXT,
    "utm_medium": TEXT,
    "utm_campaign": TEXT,
    "utm_term": TEXT,
    "utm_content": TEXT,
}
MAX_LENGTH = {
    "company": 200,
    "contact_name": 100,
    "phone": 32,
    "industry_remark": 200,
    "email": 254,
    "title": 100,
    "province": 30,
    "city": 30,
    "budget": 60,
    "external_id": 128,
}

COMPANY_SIZE_MAP = {"1-50人": 1, "51-200人": 2, "201-500人": 3, "501-1000人": 4, "1000人以上": 5}

PRESETS: dict[str, list[dict]] = {
    # Douyin (Ocean Engine) lead-ads push: one clue per request.
    MappingPreset.DOUYIN: [
        {"field": "external_id", "path": "clue_id"},
        {"field": "contact_name", "path": "name"},
        {"field": "phone", "path": "telephone"},
        {"field": "message", "path": "remark"},
        {"field": "company", "path": "form_data.公司名称"},
        {"field": "industry", "path": "form_data.行业"},
        {"field": "company_size", "path": "form_data.公司规模", "map": COMPANY_SIZE_MAP},
        {"field": "utm_source", "path": "clue_source", "default": "douyin"},
        {"field": "utm_campaign", "path": "campaign_name"},
        {"field": "utm_content", "path": "ad_id"},
    ],
    # An SMS gateway's inbound message.
    MappingPreset.SMS: [
        {"field": "phone", "path": "from"},
        {"field": "message", "path": "content"},
        {"field": "external_id", "path": "msg_id"},
        {"field": "utm_source", "path": "gateway", "default": "sms"},
    ],
    # A 400 call-centre's call-ended event.
    MappingPreset.CALL_CENTER: [
        {"field": "phone", "path": "caller"},
        {"field": "contact_name", "path": "customer_name"},
        {"field": "company", "path": "customer_company"},
        {"field": "message", "path": "summary"},
        {"field": "external_id", "path": "call_id"},
        {"field": "utm_source", "path": "hotline", "default": "400"},
    ],
    # WeCom "external contact added" (decrypted callback, see leads/wecom.py).
    # The event carries ids only (names and phones need WeCom's API): the external user id
    # is the contact handle, State the 渠道活码 it came through, UserID the staff member.
    MappingPreset.WECOM: [
        {"field": "external_id", "path": "ExternalUserID"},
        {"field": "utm_source", "default": "wecom"},
        {"field": "utm_campaign", "path": "State"},
        {"field": "utm_content", "path": "UserID"},
        {"field": "message", "default": "企业微信新增外部联系人"},
    ],
}

_INDUSTRY_WORDS = {
    **{c.value: c.value for c in Industry},
    "制造业": Industry.MANUFACTURING,
    "制造": Industry.MANUFACTURING,
    "能源": Industry.ENERGY,
    "基建": Industry.INFRASTRUCTURE,
    "基础设施": Industry.INFRASTRUCTURE,
    "其他": Industry.OTHER,
    "其它": Industry.OTHER,
}
_TRUE = {"1", "true", "yes", "y", "是", "有", "已提供", "已进入"}
_FALSE = {"0", "false", "no", "n", "否", "无", "没有", "未提供", "未进入"}
_PATH = re.compile(r"^[^.\s][^.]*(\.[^.]+)*$")


class MappingError(ValueError):
    """The rules cannot be applied: shown on the failed inbound event."""


def validate_rules(rules: Any) -> list[str]:
    """Every problem with a rule list, in words an admin can act on (empty if fine)."""
    if not isinstance(rules, list):
        return [_("Mapping rules must be a list of rules.")]
    problems = []
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(_("Rule %(n)s is not an object.") % {"n": i})
            continue
        unknown_keys = set(rule) - {"field", "path", "map", "default"}
        if unknown_keys:
            problems.append(
                _("Rule %(n)s has unknown keys: %(keys)s.")
                % {"n": i, "keys": ", ".join(sorted(unknown_keys))}
            )
        field = rule.get("field")
        if field not in FIELDS:
            problems.append(
                _("Rule %(n)s: “%(field)s” is not a lead field (one of: %(fields)s).")
                % {"n": i, "field": field, "fields": ", ".join(FIELDS)}
            )
            continue
        path = rule.get("path")
        if path is not None and (not isinstance(path, str) or not _PATH.match(path)):
            problems.append(
                _("Rule %(n)s: the path must be dotted keys, like form.size.") % {"n": i}
            )
        if path is None and "default" not in rule:
            problems.append(_("Rule %(n)s needs a path or a default.") % {"n": i})
        if "map" in rule and not isinstance(rule["map"], dict):
            problems.append(_("Rule %(n)s: “map” must be an object of source → value.") % {"n": i})
            continue
        for value in [*(rule.get("map") or {}).values(), rule.get("default")]:
            if value is None:
                continue
            try:
                convert(field, value)
            except MappingError as exc:
                problems.append(_("Rule %(n)s: %(error)s") % {"n": i, "error": exc})
    return problems


def rules_for(preset: str, rules: list[dict]) -> list[dict]:
    """The preset's rules (with no preset: every lead field read from the key of the same
    name) with the channel's own rules replacing them field by field."""
    base = PRESETS.get(preset) if preset else [{"field": f, "path": f} for f in FIELDS]
    own = {r["field"] for r in rules}
    return [*(r for r in base if r["field"] not in own), *rules]


def get_path(data: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; None when any step is missing."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


def convert(field: str, value: Any) -> Any:
    kind = FIELDS[field]
    if kind == INT:
        if isinstance(value, bool):
            raise MappingError(
                _("%(field)s needs a whole number, got %(value)r")
                % {"field": field, "value": value}
            )
        try:
            return int(str(value).strip())
        except ValueError:
            raise MappingError(
                _("%(field)s needs a whole number, got %(value)r")
                % {"field": field, "value": value}
            ) from None
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise MappingError(
            _("%(field)s needs yes or no, got %(value)r") % {"field": field, "value": value}
        )
    if kind == INDUSTRY:
        text = str(value).strip()
        return _INDUSTRY_WORDS.get(text, _INDUSTRY_WORDS.get(text.lower(), Industry.OTHER))
    text = value if isinstance(value, str) else str(value)
    return text.strip()[: MAX_LENGTH.get(field, 10_000)]


def apply(preset: str, rules: list[dict], payload: Any) -> dict[str, Any]:
    """Lead field values from `payload`. Raises MappingError for rules that cannot apply."""
    problems = validate_rules(rules)
    if problems:
        raise MappingError(" ".join(problems))
    if not isinstance(payload, dict):
        raise MappingError(_("The payload is not a JSON object."))
    values: dict[str, Any] = {}
    for rule in rules_for(preset, rules):
        field = rule["field"]
        raw = get_path(payload, rule["path"]) if rule.get("path") else None
        if isinstance(raw, str) and not raw.strip():
            raw = None
        if raw is not None and "map" in rule:
            mapped = rule["map"].get(str(raw).strip())
            raw = mapped if mapped is not None else raw
        if raw is None:
            raw = rule.get("default")
        if raw is None:
            continue
        if isinstance(raw, dict | list):
            raise MappingError(
                _("%(field)s: the value at %(path)s is not a single value.")
                % {"field": field, "path": rule.get("path")}
            )
        if FIELDS[field] == INDUSTRY:
            values["_industry_raw"] = str(raw).strip()
        values[field] = convert(field, raw)
    raw_industry = values.pop("_industry_raw", "")
    if (
        values.get("industry") == Industry.OTHER
        and raw_industry
        and raw_industry not in _INDUSTRY_WORDS
    ):
        values.setdefault("industry_remark", raw_industry[: MAX_LENGTH["industry_remark"]])
    return values
