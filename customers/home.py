"""What the customers app puts on the home page (crm.navigation.register_home_card).

Service agents have no board: their home shows the customers most recently in contact
with sales (the latest follow-up first), so the sales context of whoever calls is one
click away. The leads app adds the newest leads of customers (leads.home).
"""

from __future__ import annotations

from django.http import HttpRequest

from crm.models import Role
from customers.access import customers_visible_to

RECENT = 8


def recent_customers_card(request: HttpRequest):
    membership = getattr(request, "membership", None)
    if membership is None or membership.role != Role.SERVICE:
        return None
    customers = list(
        customers_visible_to(membership)
        .filter(last_contact_at__isnull=False)
        .select_related("owner__user")
        .order_by_last_contact()[:RECENT]
    )
    return "customers/recent_customers_card.html", {"customers": customers}
