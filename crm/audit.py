"""Audit trail (F46): `audit()` writes one AuditEvent; helpers turn edits into diffs.

Actions are stored as codes (`lead.reassigned`) and shown by their labels: each app names
the actions it audits with `register_actions({...})` in its AppConfig.ready(), and
`action_label()` reads them in the active language. Object types are stored as the model's
label (`leads.lead`) and shown by its verbose name (`object_type_label()`). Those four live
in crm.audit_labels (the AuditEvent model reads them) and are importable from here.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.audit_labels import (
    action_label,
    object_type_label,
    register_actions,
    registered_actions,
)
from crm.models import AuditEvent, Tenant

__all__ = [
    "action_label",
    "audit",
    "changes_for_people",
    "diff",
    "form_changes",
    "jsonable",
    "object_ref",
    "object_type_label",
    "register_actions",
    "register_defaults",
    "registered_actions",
    "snapshot",
]

# Keys of `changes` that are not fields of the audited model.
_CHANGE_LABELS = {"reason": _("reason"), "ok": _("succeeded")}


def changes_for_people(event: AuditEvent) -> list[tuple[str, str, str]]:
    """(field, before, after) of an event's changes, as people read them: the fields'
    verbose names, choice labels instead of codes, times in the tenant's zone."""
    try:
        model = apps.get_model(event.object_type)
    except (LookupError, ValueError):
        model = None
    rows = []
    for name, values in (event.changes or {}).items():
        field = _field(model, name)
        label = field.verbose_name if field is not None else _CHANGE_LABELS.get(name, name)
        pair = values if isinstance(values, list | tuple) and len(values) == 2 else [None, values]
        rows.append((str(capfirst(label)), *(_readable(field, value) for value in pair)))
    return rows


def _field(model, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist, or a reverse relation's name
        return None


def _readable(field, value) -> str:
    from django.utils.translation import gettext

    from crm.formatting import format_datetime

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list | tuple):
        return "、".join(_readable(field, v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_readable(None, v)}" for k, v in value.items())
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    if value in choices:
        return str(choices[value])
    if isinstance(value, str) and len(value) > 10 and value[4:5] == "-" and value[10:11] == "T":
        return format_datetime(value)
    return str(value)


def register_defaults() -> None:
    """The kernel's own actions: admin edits and notification channels."""
    register_actions(
        {
            "admin.add": _("Added in the admin"),
            "admin.change": _("Changed in the admin"),
            "admin.delete": _("Deleted in the admin"),
            "notify.test": _("Test message sent"),
            "notify.close_circuit": _("Notification channel resumed"),
        }
    )


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of a field value, readable in the trail."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    return str(value)


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The current values of `fields` on `obj`, for a later `diff()`."""
    return {name: jsonable(getattr(obj, name)) for name in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose value changed."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def form_changes(form) -> dict[str, list[Any]]:
    """The diff a bound ModelForm is about to write (its changed fields only)."""
    return {
        name: [jsonable(form.initial.get(name)), jsonable(form.cleaned_data.get(name))]
        for name in form.changed_data
    }


def object_ref(obj: models.Model) -> tuple[str, str]:
    """(type label, public id) of an object: its UUID `public_id`, else its slug or pk."""
    label = obj._meta.label_lower
    for attr in ("public_id", "slug", "pk"):
        value = getattr(obj, attr, None)
        if value is not None:
            return label, str(value)
    return label, ""


def audit(
    *,
    tenant: Tenant,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Record that `actor` (a user, or None for the system) did `action` in `tenant`.

    Tenant contract: writes into `tenant` explicitly (it works inside that tenant's
    context, where RLS admits the row). Call it in the same transaction as the change,
    so the trail and the data cannot disagree.
    """
    if obj is not None:
        object_type, object_id = object_ref(obj)
    return AuditEvent.unscoped.create(
        tenant=tenant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=jsonable(dict(changes or {})),
    )
