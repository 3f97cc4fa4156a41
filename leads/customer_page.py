"""What the leads app adds to the customer page (customers.views, through
crm.contributions; registered in leads.apps): the customer's leads, and their timelines
in the customer's trail."""

from __future__ import annotations

from crm import contributions
from leads.access import leads_visible_to
from leads.models import Lead, LeadEvent

PAGE = "customers.customer"  # customers.views.PAGE
LEADS_SHOWN = 50


def customer_leads_panel(request, membership, customer):
    """Every lead linked to the customer (up to LEADS_SHOWN, newest first), each linked to
    its page for a reader who may open it (leads.access)."""
    visible = set(
        leads_visible_to(membership).filter(customer=customer).values_list("pk", flat=True)
    )
    leads = list(
        Lead.objects.filter(customer=customer)
        .select_related("channel", "owner__user")
        .order_by("-created_at", "-id")[:LEADS_SHOWN]
    )
    context = {"leads": [(lead, lead.pk in visible) for lead in leads]}
    return "leads/customer_page_leads.html", context


def _customer_events(customer):
    """Every timeline entry of the leads the customer came from."""
    return LeadEvent.objects.filter(lead__customer=customer)


def _events(ids: list[int]):
    return LeadEvent.objects.filter(pk__in=ids).select_related("actor", "lead")


def register() -> None:
    contributions.register_panel(PAGE, customer_leads_panel)
    contributions.register_timeline_source(PAGE, "event", rows=_customer_events, load=_events)
