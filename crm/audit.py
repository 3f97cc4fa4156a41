"""Audit trail (F46): `audit()` writes one AuditEvent; helpers turn edits into diffs."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from crm.models import AuditEvent, Tenant


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
