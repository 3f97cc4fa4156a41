"""The names of audited actions and object types, as people read them (F46).

Each app names the actions it audits with `register_actions({...})` (re-exported by
crm.audit) in its AppConfig.ready(); `action_label()` reads them in the active language.
Object types are stored as the model's label (`leads.lead`) and shown by its verbose name
(`object_type_label()`). Kept apart from crm.audit, which writes AuditEvent rows, so that
the model (`AuditEvent.action_label`) reads its labels without importing the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.utils.text import capfirst

_action_labels: dict[str, Any] = {}


def register_actions(labels: Mapping[str, Any]) -> None:
    """Name audited actions, `{code: lazy label}`; registering a code again replaces it."""
    _action_labels.update(labels)


def registered_actions() -> dict[str, str]:
    """Every known action code with its label in the active language, by label."""
    labels = {code: str(label) for code, label in _action_labels.items()}
    return dict(sorted(labels.items(), key=lambda item: item[1]))


def action_label(code: str) -> str:
    """The action's label in the active language; the code itself when none is known."""
    label = _action_labels.get(code)
    return str(label) if label is not None else code


def object_type_label(object_type: str) -> str:
    """`leads.lead` → "Lead" (the model's verbose name, in the active language)."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(capfirst(model._meta.verbose_name))
