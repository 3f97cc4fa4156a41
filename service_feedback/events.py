"""The tickets' business events (F47, crm.events): kinds and their data. Emitted by
service_feedback.services.tickets_write in the run's transaction."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.events import EventKind, OutboxEvent, emit_many, event_row, register_kind

OPENED = "ticket.opened"
CLOSED = "ticket.closed"
FLAGGED = "ticket.flagged"
DONE = ("resolved", "closed")  # TicketStatus values that end a ticket

FIELDS = {
    "status": str,
    "product_line": str,
    "product_model": str,
    "fault_code": str,
    "flags": str,  # the ticket's flags, comma-separated (upsell,churn)
    "new_flags": str,  # the flags this write added
    "nps": int,
    "satisfaction": int,
    "customer_id": int,
    "province": str,
}


def register() -> None:
    for key, label in (
        (OPENED, _("Ticket received")),
        (CLOSED, _("Ticket resolved or closed")),
        (FLAGGED, _("Ticket flagged (upsell, referral, churn risk)")),
    ):
        register_kind(EventKind(key, label, FIELDS, keyed_by="customer"))


def _row(kind: str, ticket, new_flags: list[str], at=None) -> OutboxEvent:
    key = f"customer:{ticket.customer_id}" if ticket.customer_id else None
    return event_row(
        kind,
        ticket,
        key=key,
        at=at,
        status=ticket.status,
        product_line=ticket.product_line,
        product_model=ticket.product_model,
        fault_code=ticket.fault_code,
        flags=",".join(ticket.flags or []),
        new_flags=",".join(new_flags),
        nps=ticket.nps,
        satisfaction=ticket.satisfaction,
        customer_id=ticket.customer_id,
        province=ticket.province,
    )


def emit_written(written: list[tuple], *, at=None) -> None:
    """The events of a run of written tickets: (ticket, created, status before, new flags),
    at the run's time `at` (now by default)."""
    rows = []
    for ticket, created, before, new_flags in written:
        if created:
            rows.append(_row(OPENED, ticket, new_flags, at))
        if ticket.status in DONE and before not in DONE:
            rows.append(_row(CLOSED, ticket, new_flags, at))
        if new_flags:
            rows.append(_row(FLAGGED, ticket, new_flags, at))
    emit_many(rows)
