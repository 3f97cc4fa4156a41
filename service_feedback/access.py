"""Who reads which tickets: scoped by tenant, role-checked, 404 for missing and foreign
alike (as customers.access).

Service agents, managers, marketing and admins read every ticket of the tenant
(crm.roles.CUSTOMER_ALL, the readers of every customer); a rep reads the tickets of the
customers they own, never an unmatched one. Linking a ticket to a customer by hand is for
service_feedback.services.LINKERS.
"""

from __future__ import annotations

import uuid

from django.http import Http404

from crm.models import Membership
from crm.roles import CUSTOMER_ALL, CUSTOMER_LIST
from service_feedback.models import Ticket
from service_feedback.services import LINKERS

# Read every ticket of the tenant; open the ticket list at all (reps: their customers').
TICKET_ALL = CUSTOMER_ALL
TICKET_LIST = CUSTOMER_LIST


def tickets_visible_to(membership: Membership):
    """The tickets `membership` may read, in its tenant (the scoped manager)."""
    qs = Ticket.objects.all()
    if membership.role in TICKET_ALL:
        return qs
    if membership.role in TICKET_LIST:
        return qs.filter(customer__owner=membership)
    return qs.none()


def can_link(membership: Membership) -> bool:
    return membership.role in LINKERS


def access_ticket(
    membership: Membership, public_id: uuid.UUID | str, *, link: bool = False
) -> Ticket:
    """A ticket of `membership`'s tenant that this member may read (and with `link`, link
    to a customer), or 404 for every other id alike."""
    ticket = (
        tickets_visible_to(membership)
        .select_related("customer__owner__user", "contact", "channel", "alert")
        .filter(public_id=public_id)
        .first()
    )
    if ticket is None or (link and not can_link(membership)):
        raise Http404("No such ticket.")
    return ticket
