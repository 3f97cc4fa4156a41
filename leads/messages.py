"""Texts stored as codes and rendered in the reader's language.

A lead is processed once, by a worker, in whatever language is active there; it is read
later by people in theirs. So suspect reasons, intake errors and timeline entries keep a
code and parameters in the database, and become words only when shown. A parameter
named `field` is a lead field's name and is shown as that field's label.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _

SUSPECT_REASONS = {
    "phone_unrecognised": _("Phone number not recognised: %(phone)s"),
    "phone_placeholder": _("Placeholder-like phone number: %(phone)s"),
    "email_malformed": _("E-mail address is malformed: %(email)s"),
    "test_entry": _("Looks like a test entry"),
    "registry_not_found": _("Company not found in the business registry: %(company)s"),
}

# Why an inbound event failed, and what the mapping found wrong (rules, values).
INTAKE_MESSAGES = {
    # Receiving
    "body_not_json": _(
        "The body is not valid JSON (line %(line)s, column %(column)s): the sender must "
        "send one JSON object."
    ),
    "body_not_utf8": _("The body is not UTF-8 text: the sender must send UTF-8 JSON."),
    "body_bad_number": _(
        "The body holds the number %(value)s, which cannot be stored: NaN, Infinity and "
        "numbers beyond the floating-point range are refused."
    ),
    "body_big_integer": _(
        "The body holds an integer of %(digits)s digits, which is refused (at most %(limit)s)."
    ),
    "body_nul_character": _(
        "The body holds a NUL character (\\u0000), which cannot be stored: the sender must "
        "leave it out."
    ),
    "body_lone_surrogate": _(
        "The body holds a lone surrogate (%(value)s), which is not a character and cannot "
        "be stored: the sender must send valid Unicode."
    ),
    "body_too_deep": _("The body is nested more than %(limit)s levels deep, which is refused."),
    "honeypot": _(
        "Kept as spam: the form's hidden trap field was filled in, as bots do. "
        "Re-process it only if a person really sent it."
    ),
    "wecom_unreadable": _(
        "The WeCom callback could not be decrypted or read: check the channel's corp ID "
        "and EncodingAESKey."
    ),
    # Processing
    "not_object": _("The payload is not a JSON object."),
    "no_contact": _(
        "No way to reach this lead: a phone, an e-mail or an external id is needed "
        "(check the channel's mapping)."
    ),
    "not_single_value": _(
        "%(field)s: an object or a list was received, not a single value (check the "
        "channel's mapping)."
    ),
    "not_single_value_at": _(
        "%(field)s: the value at “%(path)s” is an object or a list, not a single value "
        "(check the channel's mapping)."
    ),
    "rules_invalid": _("The channel's mapping rules cannot be used: %(problems)s"),
    "internal": _(
        "Unexpected error while processing (%(exception)s): the server log has the details. "
        "Re-process the event once it is fixed."
    ),
    # Values
    "needs_number": _("%(field)s needs a whole number, got “%(value)s”."),
    "needs_size_class": _(
        "%(field)s needs a whole number or a size band (%(bands)s), got “%(value)s”."
    ),
    "needs_yes_no": _("%(field)s needs yes or no, got “%(value)s”."),
    "too_long": _("%(field)s was cut to %(limit)s characters (it had %(length)s)."),
    "unmapped": _("%(field)s could not be mapped: “%(value)s” was kept as received."),
    # Rules
    "rules_not_list": _("Mapping rules must be a list of rules."),
    "rule_not_object": _("Rule %(n)s is not an object."),
    "rule_unknown_keys": _("Rule %(n)s has unknown keys: %(keys)s."),
    "rule_unknown_field": _("Rule %(n)s: “%(name)s” is not a lead field (one of: %(fields)s)."),
    "rule_bad_path": _("Rule %(n)s: the path must be dotted keys, like form.size."),
    "rule_needs_path": _("Rule %(n)s needs a path or a default."),
    "rule_map_not_object": _("Rule %(n)s: “map” must be an object of source → value."),
    "rule_bad_value": _("Rule %(n)s: %(error)s"),
}

# Labels of the fields that are not Lead model fields.
_EXTRA_LABELS = {
    "utm_source": _("UTM source"),
    "utm_medium": _("UTM medium"),
    "utm_campaign": _("UTM campaign"),
    "utm_term": _("UTM term"),
    "utm_content": _("UTM content"),
}


def reason(code: str, **params: str) -> dict:
    """A suspect reason as stored: {"code": …, **params}."""
    if code not in SUSPECT_REASONS:
        raise ValueError(f"unknown suspect reason {code!r}")
    return {"code": code, **params}


def reason_text(stored: dict | str) -> str:
    """The reason in the active language (a plain string is shown as it is)."""
    if isinstance(stored, str):
        return stored
    template = SUSPECT_REASONS.get(stored.get("code"))
    if template is None:
        return str(stored.get("code", ""))
    try:
        return str(template) % stored
    except (KeyError, TypeError, ValueError):
        return str(template)


def field_label(name: str) -> str:
    """A lead field's label in the active language: 'contact_name' → 联系人. The model
    comes from the app registry, not an import: the models import this module."""
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    Lead = apps.get_model("leads", "Lead")
    if name in _EXTRA_LABELS:
        return str(_EXTRA_LABELS[name])
    try:
        return str(Lead._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return str(name)


def intake_message(code: str, **params) -> dict:
    """An intake error or problem as stored: {"code": …, **params} (JSON-safe params)."""
    if code not in INTAKE_MESSAGES:
        raise ValueError(f"unknown intake message {code!r}")
    return {"code": code, **params}


def intake_text(stored: dict | str | None) -> str:
    """The stored message in the active language; `field` shown as its label, nested
    messages (`error`, `problems`) rendered too. A plain string is shown as it is."""
    if not stored:
        return ""
    if isinstance(stored, str):
        return stored
    template = INTAKE_MESSAGES.get(stored.get("code"))
    if template is None:
        return str(stored.get("code", ""))
    params = dict(stored)
    if params.get("field"):
        params["field"] = field_label(params["field"])
    if isinstance(params.get("error"), dict):
        params["error"] = intake_text(params["error"])
    if isinstance(params.get("problems"), list):
        params["problems"] = " ".join(intake_text(p) for p in params["problems"])
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(template)


def intake_text_en(stored: dict) -> str:
    """The stored message in English: the event's technical record (`error`), the same
    whatever language the worker ran in."""
    with translation.override("en"):
        return intake_text(stored)


class CodedError(Exception):
    """An error carrying a stored message; str() is its text in the active language."""

    def __init__(self, code: str, **params):
        self.detail = intake_message(code, **params)
        super().__init__(code)

    def __str__(self) -> str:
        return intake_text(self.detail)
