"""The leads' business events (F47, crm.events): created, assigned, verified. Emitted by
intake, reassignment and verification in the change's transaction."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.events import EventKind, emit, emit_many, event_row, register_kind

CREATED = "lead.created"
ASSIGNED = "lead.assigned"
VERIFIED = "lead.verified"

FIELDS = {
    "source_grade": str,
    "status": str,
    "company": str,
    "industry": str,
    "province": str,
    "city": str,
    "tags": str,  # the lead's tags, comma-separated
    "score": int,
    "owner_id": int,
    "customer_id": int,
    "verification": str,
    "is_suspect": bool,
}


def register() -> None:
    for key, label in (
        (CREATED, _("Lead created")),
        (ASSIGNED, _("Lead assigned")),
        (VERIFIED, _("Lead verified")),
    ):
        register_kind(EventKind(key, label, FIELDS, keyed_by="lead"))


def _data(lead, tags=None) -> dict:
    return {
        "source_grade": lead.source_grade,
        "status": lead.status,
        "company": lead.company,
        "industry": lead.industry,
        "province": lead.province,
        "city": lead.city,
        "tags": ",".join(tags) if tags is not None else "",
        "score": lead.score,
        "owner_id": lead.owner_id,
        "customer_id": lead.customer_id,
        "verification": lead.verification or "",
        "is_suspect": bool(lead.is_suspect),
    }


def emit_created(built: list[tuple]) -> None:
    """Leads just inserted by intake: (lead, tag names). An assigned one is also
    `lead.assigned`."""
    rows = []
    for lead, tags in built:
        rows.append(event_row(CREATED, lead, **_data(lead, tags)))
        if lead.owner_id:
            rows.append(event_row(ASSIGNED, lead, **_data(lead, tags)))
    emit_many(rows)


def emit_lead(kind: str, lead, *, at=None) -> None:
    """`kind` about `lead`, at the change's time `at` (now by default)."""
    emit(kind, lead, at=at, **_data(lead))
