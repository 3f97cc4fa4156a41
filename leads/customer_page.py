"""What the leads app adds to the customer page (customers.views, through
crm.contributions; registered in leads.apps): the customer's leads, and their timelines
in the customer's trail."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm import contributions
from crm.contributions import PanelWindow
from leads.access import leads_visible_to
from leads.models import Lead, LeadEvent

PAGE = "customers.customer"  # customers.views.PAGE


def customer_leads_panel(request, membership, customer):
    """The leads linked to the customer, newest first, in the panel's window (the first 5
    of the last 12 months, then more: crm.contributions.PanelWindow), each linked to its
    page for a reader who may open it (leads.access)."""
    window = PanelWindow.of(request)
    rows = Lead.objects.filter(customer=customer)
    if window.since is not None:
        rows = rows.filter(created_at__gte=window.since)
    leads, has_more = window.rows(
        rows.select_related("channel", "owner__user").order_by("-created_at", "-id")
    )
    visible = set(
        leads_visible_to(membership)
        .filter(pk__in=[lead.pk for lead in leads])
        .values_list("pk", flat=True)
    )
    context = {"leads": [(lead, lead.pk in visible) for lead in leads], "has_more": has_more}
    return "leads/customer_page_leads.html", context


def _customer_events(customer):
    """Every timeline entry of the leads the customer came from."""
    return LeadEvent.objects.filter(lead__customer=customer)


def _events(ids: list[int]):
    return LeadEvent.objects.filter(pk__in=ids).select_related("actor", "lead")


def register() -> None:
    contributions.register_panel(
        PAGE, customer_leads_panel, key="leads", lazy=True, title=_("Leads"), order=40
    )
    contributions.register_timeline_source(PAGE, "event", rows=_customer_events, load=_events)
