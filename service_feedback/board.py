"""The daily board's "服务线索" section (crm.board): the member's customers' tickets flagged
upsell or referral, not handled yet, newest first, each with its service review summary.

A flagged ticket is handled once a follow-up is logged on its customer (by anyone, on the
customer page) at or after the ticket came in: the rep calls, logs what was said, and
the item leaves the board. Whatever the helpdesk's own status of the ticket: a resolved
ticket that asked for more is still a lead for sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, Q

from crm.models import Membership
from customers.models import Interaction
from service_feedback import review
from service_feedback.contributions import flag_labels
from service_feedback.models import FlagKind, Ticket

# At most this many on a board: the rest are on the customers' timelines.
BOARD_LIMIT = 10
LEAD_FLAGS = (FlagKind.UPSELL, FlagKind.REFERRAL)


@dataclass
class ServiceLeadItem:
    ticket: Ticket
    summary: review.Summary

    @property
    def flags(self) -> list[str]:
        return flag_labels([f for f in self.ticket.flags if f in LEAD_FLAGS])


def open_service_leads(membership: Membership):
    """The flagged tickets of the member's customers with no follow-up since they came."""
    flagged = Q()
    for flag in LEAD_FLAGS:
        flagged |= Q(flags__contains=[flag.value])
    followed = Interaction.objects.filter(
        customer_id=OuterRef("customer_id"), at__gte=OuterRef("received_at")
    )
    return (
        Ticket.objects.filter(flagged, customer__owner=membership)
        .filter(~Exists(followed))
        .select_related("customer")
        .order_by("-received_at", "-id")
    )


def service_lead_items(membership: Membership, today: date) -> list[ServiceLeadItem]:
    """The board's items (crm.board's `items` provider)."""
    tickets = list(open_service_leads(membership)[:BOARD_LIMIT])
    if not tickets:
        return []
    summaries = review.summaries(membership.tenant, [t.customer for t in tickets])
    return [ServiceLeadItem(t, summaries[t.customer_id]) for t in tickets]
