"""What the leads app puts on the home page besides the training card: for service
agents, the newest leads that belong to a customer (what the customer asked for, and
who in sales has it), each linked to its customer's page."""

from __future__ import annotations

from django.http import HttpRequest

from crm.models import Role
from leads.models import Lead

RECENT = 8


def customer_leads_card(request: HttpRequest):
    membership = getattr(request, "membership", None)
    if membership is None or membership.role != Role.SERVICE:
        return None
    # Newest first through the index lead_newest, until RECENT leads with a customer.
    leads = list(
        Lead.objects.filter(customer__isnull=False)
        .select_related("customer", "channel", "owner__user")
        .order_by("-created_at", "-id")[:RECENT]
    )
    return "leads/customer_leads_card.html", {"leads": leads}
