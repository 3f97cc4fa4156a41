"""Sending a tracked link from the customer page (F32).

`/health/customers/<customer uuid>/links/` (`health_link_create`): GET answers the
panel with the send form open (htmx; a plain GET the panel on its own page); POST sends
the link: htmx gets the panel back (the new link's address to copy, or the form with its
field errors, 422), a plain post is redirected to the customer page (or shown the form's
errors). 404 for a customer of another tenant, and for one the member may not write on
(customers.access).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.roles import CUSTOMER_LIST
from customers.access import access_customer
from health import links
from health.forms_links import LinkForm


@require_http_methods(["GET", "POST"])
def link_create(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = request.membership
    if membership is None or membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(_("Customers are for the members of this tenant."))
    customer = access_customer(membership, public_id, write=True)
    template = "health/links_panel.html" if request.htmx else "health/links_page.html"
    if request.method == "GET":
        form = LinkForm(customer=customer)
        context = links.panel_context(request, membership, customer, form=form)
        return TemplateResponse(request, template, context)
    form = LinkForm(request.POST, customer=customer)
    sent = None
    if form.is_valid():
        try:
            sent = links.link_create(
                tenant=request.tenant,
                acting_member=membership,
                customer=customer,
                kind=form.cleaned_data["kind"],
                title=form.cleaned_data["title"],
                target_url=form.cleaned_data["target_url"],
                contact=form.cleaned_data["contact"],
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
    if sent is not None and not request.htmx:
        return redirect("customers:detail", public_id=customer.public_id)
    context = links.panel_context(
        request, membership, customer, form=None if sent else form, sent=sent
    )
    return TemplateResponse(request, template, context, status=200 if sent else 422)


urlpatterns = [
    path("health/customers/<uuid:public_id>/links/", link_create, name="health_link_create"),
]
