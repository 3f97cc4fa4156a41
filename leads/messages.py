"""Texts stored as codes and rendered in the reader's language.

A lead is processed once, by a worker, in whatever language is active there; it is read
later by people in theirs. So suspect reasons and timeline entries keep a code and
parameters in the database, and become words only when shown.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

SUSPECT_REASONS = {
    "phone_unrecognised": _("Phone number not recognised: %(phone)s"),
    "phone_placeholder": _("Placeholder-like phone number: %(phone)s"),
    "email_malformed": _("E-mail address is malformed: %(email)s"),
    "test_entry": _("Looks like a test entry"),
    "registry_not_found": _("Company not found in the business registry: %(company)s"),
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
