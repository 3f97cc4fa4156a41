"""The customer 360's lazy panels (F35) over HTTP, and the customers app's own panels.

- GET `/customers/<uuid>/panels/<key>/` (`customers:panel`): one lazy panel of the
  customer page (crm.contributions.register_panel(..., lazy=True)), as htmx fetches it
  when its placeholder comes into view; without htmx the panel alone on a page (the
  placeholder's link, for a browser without JavaScript). 404 for an unknown key, another
  tenant's customer, or a customer the member may not read (customers.access, as the
  page). A panel with nothing to show answers an empty fragment (the placeholder goes).
- The keys served here besides the contributed ones: "timeline" (the customer's whole
  trail, crm.contributions.merged_timeline, 20 entries a page over the period) and
  "interactions" (registered by `register()`: the follow-ups and verification calls on
  the customer, the newest first).

Panels that list rows follow crm.contributions' window convention: the first 5 rows then
"显示更多" (`?more=1`, `?limit=N`), the last 12 months unless `?months=all`.
"""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from crm import contributions
from crm.contributions import PanelWindow
from customers.access import access_customer
from customers.models import ContactMethod, Customer, Interaction
from customers.views import PAGE, _reader, customer_timeline

TIMELINE = "timeline"
INTERACTIONS = "interactions"


def panel_url(customer: Customer, key: str) -> str:
    return reverse("customers:panel", args=[customer.public_id, key])


def interactions_panel(request, membership, customer):
    """The follow-ups and verification calls logged on the customer (on it or on its
    leads), the newest first, in the window (crm.contributions.PanelWindow)."""
    window = PanelWindow.of(request)
    rows = Interaction.objects.filter(customer=customer)
    if window.since is not None:
        rows = rows.filter(at__gte=window.since)
    interactions, has_more = window.rows(
        rows.select_related("by__user", "next_action", "contact").order_by("-at", "-id")
    )
    channels = dict(ContactMethod.choices)
    for item in interactions:
        item.channel_label = channels.get(item.channel, item.channel)
    return "customers/panel_interactions.html", {
        "interactions": interactions,
        "has_more": has_more,
    }


def _timeline_panel(request, customer: Customer):
    window = PanelWindow.of(request)
    timeline = customer_timeline(customer, request.GET.get("page"), since=window.since)
    return "customers/panel_timeline.html", {"timeline": timeline}


@require_GET
def customer_panel(request: HttpRequest, public_id: uuid.UUID, key: str) -> HttpResponse:
    membership = _reader(request)
    spec = contributions.lazy_panel(PAGE, key)
    if spec is None and key != TIMELINE:
        raise Http404("No such panel.")
    customer = access_customer(membership, public_id)
    if spec is None:
        found = _timeline_panel(request, customer)
        title = _("Timeline")
    else:
        found = spec.panel(request, membership, customer)
        title = spec.title
    url = panel_url(customer, key)
    body = ""
    if found is not None:
        template, context = found
        context = {
            **context,
            "customer": context.get("customer", customer),
            "window": PanelWindow.of(request),
            "panel_url": url,
            "panel_key": key,
        }
        body = render_to_string(template, context, request)
    context = {"customer": customer, "key": key, "title": title, "body": body}
    if request.htmx:
        return TemplateResponse(request, "customers/panel.html", context)
    return TemplateResponse(request, "customers/panel_page.html", context)


def register() -> None:
    """The customer page's own lazy panel and key figure (customers.apps)."""
    from customers.models import Contact

    contributions.register_panel(
        PAGE,
        interactions_panel,
        key=INTERACTIONS,
        lazy=True,
        title=_("Follow-ups"),
        order=60,
    )
    contributions.register_figure(
        PAGE,
        "contacts",
        label=pgettext_lazy("people at the customer", "Contacts"),
        value=lambda membership: contributions.count_of(Contact.objects.all(), "customer"),
        order=10,
    )
