"""What service feedback adds to the customer page (crm.contributions; registered from
service_feedback.effects.register): every ticket of the customer on its timeline (the
service review card's panel is service_feedback.review)."""

from __future__ import annotations

from django.db.models import F
from django.utils.translation import gettext as _

from service_feedback.models import FlagKind, Ticket

CUSTOMER_PAGE = "customers.customer"  # customers.views.PAGE


def flag_labels(flags) -> list[str]:
    labels = dict(FlagKind.choices)
    return [str(labels[f]) for f in flags or [] if f in labels]


class TicketEntry:
    """A ticket as the customer's timeline shows it (the contract of
    crm.contributions.TimelineSource: kind, its label, text, at, actor)."""

    kind = "ticket"
    lead_id = None
    original_url = None
    actor = None  # the helpdesk: the timeline says "System"

    def __init__(self, ticket: Ticket):
        self.ticket = ticket
        self.pk = ticket.pk
        self.at = ticket.opened_at

    def get_kind_display(self) -> str:
        return _("Service ticket")

    @property
    def text(self) -> str:
        t = self.ticket
        parts = [f"{t.external_id} · {t.subject or _('(no subject)')}", t.get_status_display()]
        if t.product_model or t.fault_code:
            parts.append(" ".join(p for p in (t.product_model, t.fault_code) if p))
        if t.satisfaction is not None:
            parts.append(_("satisfaction %(score)s/5") % {"score": t.satisfaction})
        flags = flag_labels(t.flags)
        if flags:
            parts.append(_("flags: %(flags)s") % {"flags": ", ".join(flags)})
        return " · ".join(parts)


def customer_ticket_rows(customer):
    return Ticket.objects.filter(customer=customer).annotate(at=F("opened_at"))


def load_ticket_entries(ids: list[int]) -> list[TicketEntry]:
    return [TicketEntry(t) for t in Ticket.objects.filter(pk__in=ids)]
