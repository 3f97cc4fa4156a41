"""Field mapping (F3): dotted source paths → lead fields, with value maps and defaults.

A channel's rules are a list of
    {"field": "company_size", "path": "form.size", "map": {"1-50人": 1}, "default": null}
applied over the preset's rules for the same field. With no preset and no rules the
payload's keys are taken as lead field names (the hosted form and the generic webhook).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from leads.messages import CodedError, intake_message
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

# The company-size bands forms offer, as the class Lead.company_size stores (1 … 5).
COMPANY_SIZE_MAP = {"1-50人": 1, "51-200人": 2, "201-500人": 3, "501-1000人": 4, "1000人以上": 5}
# Other ways people and platforms write the same bands (compared after _band_key).
_COMPANY_SIZE_ALIASES = {
    "50以下": 1,
    "少于50": 1,
    "1-49": 1,
    "1000及以上": 5,
    "1000+": 5,
    "1001以上": 5,
    "1000以上": 5,
}
# The fields that reach a lead: a problem with one of them fails the event, a problem
# with any other field is noted and the lead still made.
CONTACT_FIELDS = ("phone", "email", "external_id")
# Texts without a limit of their own (message, UTM parameters) are kept up to this.
TEXT_LIMIT = 10_000
_SMALLINT_MAX = 32767
_KEPT_VALUE = 200  # characters of an unmappable value kept with its note

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
    # WeCom "external contact added" (decrypted callback, see leads/intake/wecom.py).
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


class MappingError(CodedError, ValueError):
    """The rules or a value cannot be applied: shown on the failed inbound event."""


def _band_key(text: str) -> str:
    """'51 - 200 人' and '51～200人' → '51-200'."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[\s人名员工]+", "", text)
    return re.sub(r"[~～—–－至到]", "-", text)


_BANDS = {_band_key(k): v for k, v in COMPANY_SIZE_MAP.items()} | _COMPANY_SIZE_ALIASES


def company_size_class(value: Any) -> int | None:
    """The size class of a band as forms write it ('51-200人' → 2), or None."""
    return _BANDS.get(_band_key(str(value)))


def _map_key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


def lookup(value_map: dict, raw: Any) -> tuple[bool, Any]:
    """(found, mapped value) of `raw` in a rule's map: the exact text first, then the
    same text with other widths, case and spacing. A value mapped to null is found."""
    key = str(raw).strip()
    if key in value_map:
        return True, value_map[key]
    wanted = _map_key(key)
    for source, mapped in value_map.items():
        if _map_key(str(source)) == wanted:
            return True, mapped
    return False, None


def rule_problems(rules: Any) -> list[dict]:
    """Every problem with a rule list, as stored messages (leads.messages)."""
    if not isinstance(rules, list):
        return [intake_message("rules_not_list")]
    problems = []
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(intake_message("rule_not_object", n=i))
            continue
        unknown_keys = set(rule) - {"field", "path", "map", "default"}
        if unknown_keys:
            problems.append(
                intake_message("rule_unknown_keys", n=i, keys=", ".join(sorted(unknown_keys)))
            )
        field = rule.get("field")
        if field not in FIELDS:
            problems.append(
                intake_message("rule_unknown_field", n=i, name=str(field), fields=", ".join(FIELDS))
            )
            continue
        path = rule.get("path")
        if path is not None and (not isinstance(path, str) or not _PATH.match(path)):
            problems.append(intake_message("rule_bad_path", n=i))
        if path is None and "default" not in rule:
            problems.append(intake_message("rule_needs_path", n=i))
        if "map" in rule and not isinstance(rule["map"], dict):
            problems.append(intake_message("rule_map_not_object", n=i))
            continue
        # null in a map or as the default: leave the field empty.
        for value in [*(rule.get("map") or {}).values(), rule.get("default")]:
            if value is None:
                continue
            try:
                convert(field, value)
            except MappingError as exc:
                problems.append(intake_message("rule_bad_value", n=i, error=exc.detail))
    return problems


def validate_rules(rules: Any) -> list[str]:
    """Every problem with a rule list, in words an admin can act on (empty if fine)."""
    from leads.messages import intake_text

    return [intake_text(p) for p in rule_problems(rules)]


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


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:60] + "…"


def convert(field: str, value: Any) -> Any:
    """`value` as the field stores it (texts trimmed, not cut). Raises MappingError."""
    kind = FIELDS[field]
    if kind == INT:
        if not isinstance(value, bool):
            try:
                number = int(str(value).strip())
            except ValueError:
                number = None
            if number is not None and 0 <= number <= _SMALLINT_MAX:
                return number
            if field == "company_size" and (size := company_size_class(value)) is not None:
                return size
        if field == "company_size":
            raise MappingError(
                "needs_size_class",
                field=field,
                value=_shown(value),
                bands="、".join(COMPANY_SIZE_MAP),
            )
        raise MappingError("needs_number", field=field, value=_shown(value))
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise MappingError("needs_yes_no", field=field, value=_shown(value))
    if kind == INDUSTRY:
        text = str(value).strip()
        return _INDUSTRY_WORDS.get(text, _INDUSTRY_WORDS.get(text.lower(), Industry.OTHER))
    text = value if isinstance(value, str) else str(value)
    return text.strip()


def _kept(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:_KEPT_VALUE]


def apply(
    preset: str, rules: list[dict], payload: Any, issues: list[dict] | None = None
) -> dict[str, Any]:
    """Lead field values from `payload`. Raises MappingError for rules that cannot apply.

    With an `issues` list, a value of an optional field that cannot be read (a word
    where a number belongs, an object where a text belongs) is left out and noted there
    ("unmapped", with the value as received), and so is a text cut to its field's limit
    ("too_long"); only the contact fields (phone, e-mail, external id) still raise.
    Without it every such value raises and texts are cut silently."""
    problems = rule_problems(rules)
    if problems:
        raise MappingError("rules_invalid", problems=problems)
    if not isinstance(payload, dict):
        raise MappingError("not_object")
    values: dict[str, Any] = {}
    for rule in rules_for(preset, rules):
        field = rule["field"]
        raw = get_path(payload, rule["path"]) if rule.get("path") else None
        if isinstance(raw, str) and not raw.strip():
            raw = None
        if raw is not None and "map" in rule and not isinstance(raw, dict | list):
            found, mapped = lookup(rule["map"], raw)
            if found and mapped is None:
                continue  # mapped to null: leave the field empty
            if found:
                raw = mapped
        if raw is None:
            raw = rule.get("default")
        if raw is None:
            continue
        try:
            if isinstance(raw, dict | list):
                path = rule.get("path") or ""
                if path in ("", field):
                    raise MappingError("not_single_value", field=field)
                raise MappingError("not_single_value_at", field=field, path=path)
            value = convert(field, raw)
        except MappingError as exc:
            if issues is None or field in CONTACT_FIELDS:
                raise
            issues.append(
                intake_message("unmapped", field=field, value=_kept(raw), error=exc.detail)
            )
            continue
        if isinstance(value, str):
            limit = MAX_LENGTH.get(field, TEXT_LIMIT)
            if len(value) > limit:
                if issues is not None:
                    issues.append(
                        intake_message("too_long", field=field, limit=limit, length=len(value))
                    )
                value = value[:limit]
        if FIELDS[field] == INDUSTRY:
            values["_industry_raw"] = str(raw).strip()
        values[field] = value
    raw_industry = values.pop("_industry_raw", "")
    if (
        values.get("industry") == Industry.OTHER
        and raw_industry
        and raw_industry not in _INDUSTRY_WORDS
    ):
        values.setdefault("industry_remark", raw_industry[: MAX_LENGTH["industry_remark"]])
    return values
