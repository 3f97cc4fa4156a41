"""What the ticket screens contribute to the kernel's registries: the audit label of the
link by hand, the menu ("Tickets" for
whoever reads tickets, the queue for whoever links them), the ticket list's background
export, and the service agent's home cards (crm.navigation.register_home_card).

Service agents have no board: their home shows the queue of tickets waiting for a
customer (how many, the oldest few) and the newest tickets, besides the customers in
recent contact with sales (customers.home) and the newest leads of customers
(leads.home). Managers and admins see the queue card while tickets wait."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.models import Role
from service_feedback.access import can_link, tickets_visible_to
from service_feedback.models import Ticket

OLDEST = 5
COUNT_CAP = 999
RECENT = 8


def ticket_queue_card(request: HttpRequest):
    """The unmatched tickets: their count and the oldest few (service agents always;
    the other linkers only while some wait)."""
    membership = getattr(request, "membership", None)
    if membership is None or not can_link(membership):
        return None
    waiting = Ticket.objects.unmatched()
    oldest = list(waiting.select_related("channel").order_by("received_at", "id")[:OLDEST])
    if not oldest and membership.role != Role.SERVICE:
        return None
    # Counted up to COUNT_CAP (a queue that long says "999+"): the card never counts a
    # backlog of tens of thousands on every home page.
    count = len(oldest) if len(oldest) < OLDEST else waiting.order_by()[: COUNT_CAP + 1].count()
    context = {"oldest": oldest, "count": min(count, COUNT_CAP), "more": count > COUNT_CAP}
    return "service_feedback/home_queue_card.html", context


def recent_tickets_card(request: HttpRequest):
    """The newest tickets, for service agents."""
    membership = getattr(request, "membership", None)
    if membership is None or membership.role != Role.SERVICE:
        return None
    tickets = list(
        tickets_visible_to(membership)
        .select_related("customer")
        .order_by("-opened_at", "-id")[:RECENT]
    )
    return "service_feedback/home_recent_card.html", {"tickets": tickets}


def register() -> None:
    from crm.audit import register_actions
    from crm.navigation import REPORTS, NavItem, register_home_card
    from crm.navigation import register as register_nav
    from crm.roles import CUSTOMER_ALL
    from service_feedback import exports
    from service_feedback.access import TICKET_LIST
    from service_feedback.services import LINKERS

    # The link by hand (services.ticket_link), made from the queue and the ticket's page.
    register_actions({"ticket.link": _("Ticket linked to a customer")})
    register_nav(
        NavItem(
            "tickets",
            _("Tickets"),
            "service_feedback:tickets",
            "headset",
            description=_(
                "Helpdesk tickets and the customers they belong to: status, flags, response"
                " and resolution minutes; filters and CSV."
            ),
            roles=TICKET_LIST,
            order=16,
        )
    )
    register_nav(
        NavItem(
            "tickets_unmatched",
            _("Tickets waiting for a customer"),
            "service_feedback:unmatched",
            "link-45deg",
            description=_(
                "Tickets no customer code, phone or e-mail matched: link each to its"
                " customer, and the next one from the same phone or e-mail matches by itself."
            ),
            roles=LINKERS,
            order=17,
            in_navbar=False,
        )
    )
    register_nav(
        NavItem(
            "service_report",
            _("Service report"),
            "service_report:service",
            "bar-chart-line",
            group=REPORTS,
            description=_(
                "First response within target, resolution times and repeat complaints per"
                " product line and region, with their trend; each figure opens its tickets."
            ),
            roles=CUSTOMER_ALL,
            order=18,
            in_navbar=False,
        )
    )
    register_home_card(ticket_queue_card)
    register_home_card(recent_tickets_card)
    exports.register()
