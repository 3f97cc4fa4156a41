"""The service review card's read receipt (F28) over HTTP.

- POST `/service/review/<customer uuid>/read/` (`review_read`): the rep marks the card
  read (services.review_mark_read). htmx gets the card back (saying read); a plain post
  a redirect to the customer page. Anyone who may read the customer (customers.access:
  404 for another tenant's or another rep's customer); 409 without a recent ticket.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.roles import CUSTOMER_LIST
from customers.access import access_customer
from service_feedback import review, services


def reader(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(_("Customers are for the members of this tenant."))
    return membership


@require_POST
def review_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = reader(request)
    customer = access_customer(membership, public_id)
    try:
        services.review_mark_read(
            tenant=request.tenant, acting_member=membership, customer=customer
        )
    except ValidationError as exc:
        context = {"message": " ".join(exc.messages), "lead": None}
        template = "customers/refused.html" if request.htmx else "customers/conflict.html"
        return TemplateResponse(request, template, context, status=409)
    if not request.htmx:
        return redirect("customers:detail", public_id=customer.public_id)
    context = {"card": review.card(customer, membership), "customer": customer}
    return TemplateResponse(request, "service_feedback/panel_review.html", context)


urlpatterns = [
    path("review/<uuid:public_id>/read/", review_read, name="review_read"),
]
