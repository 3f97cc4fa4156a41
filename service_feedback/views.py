"""Tickets over HTTP (F27): the list, a ticket's page, the queue of unmatched tickets and
the link by hand.

- GET `/service/tickets/` (`service_feedback:tickets`): the tickets this member may read
  (service_feedback.access), filtered, sorted and paginated, or streamed as CSV
  (`?_export=csv`, service_feedback.exports).
- GET `/service/tickets/<uuid>/` (`service_feedback:ticket`): the ticket.
- GET `/service/tickets/unmatched/` (`service_feedback:unmatched`): the tickets waiting
  for a customer, oldest first, each with what it carries and the form that links it
  (service_feedback.services.LINKERS).
- GET/POST `/service/tickets/<uuid>/link/` (`service_feedback:link`): GET `?q=` answers
  the customers found (a fragment for the link form, htmx); POST `customer` (a customer's
  uuid) and `remember` links the ticket through services.ticket_link. A refusal answers
  the form with its error (422); a success redirects to `next` (htmx: `HX-Redirect`)
  with a message saying how many waiting tickets were linked with it.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods
from django_tables2 import RequestConfig

from crm import exports as background
from crm import search as gram_search
from crm.http import query_with
from crm.roles import ADMINS
from crm.tables import COUNT_CAP, list_paging, streamed_csv
from customers.access import access_customer, customers_visible_to
from customers.filters import CustomerFilter
from service_feedback import exports, services
from service_feedback.access import (
    TICKET_ALL,
    TICKET_LIST,
    access_ticket,
    can_link,
    tickets_visible_to,
)
from service_feedback.filters import TicketFilter
from service_feedback.models import Ticket
from service_feedback.tables import FLAG_LABELS, TicketTable

QUEUE_PER_PAGE = 25
CANDIDATES = 8
OTHER_TICKETS = 5


def reader(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in TICKET_LIST:
        raise PermissionDenied(_("Tickets are for the members of this tenant."))
    return membership


def linker(request: HttpRequest):
    membership = request.membership
    if membership is None or not can_link(membership):
        raise PermissionDenied(_("Service agents and managers link tickets to customers."))
    return membership


# -- the list -------------------------------------------------------------------------------


@require_GET
def ticket_list(request: HttpRequest) -> HttpResponse:
    """Reps see their customers' tickets, everyone else the tenant's; a constant number of
    queries whatever the number of rows."""
    membership = reader(request)
    if request.GET.get("_export") == "csv":
        stem, rows = exports.ticket_rows(membership, request.GET)
        return streamed_csv(rows, f"{stem}.csv", tenant=request.tenant)
    visible = tickets_visible_to(membership)
    qs = visible.select_related("customer")
    bar = TicketFilter(request.GET, queryset=qs)
    table = TicketTable(bar.qs)
    paginate = list_paging(
        TicketTable._meta.per_page,
        exact=request.GET.get("count") == "exact",
        searched=False,
        walked=False,
        count_cap=COUNT_CAP,
        search_cap=gram_search.SEARCH_CAP,
        rows_from=None,
    )
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = bar.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": bar,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "exact_count_query": query_with(request, count="exact", page=None),
        "has_tickets": count > 0 or (filtered and visible.exists()),
        "is_rep": membership.role not in TICKET_ALL,
        "can_link": can_link(membership),
        "export_query": query_with(request, _export="csv", page=None),
        "export_background": background.in_background(count, table.paginator.count_capped),
        "export_kind": exports.KIND,
        "export_list_query": background.list_query(request.GET),
    }
    return TemplateResponse(request, "service_feedback/ticket_list.html", context)


# -- a ticket's page ------------------------------------------------------------------------


def detail_context(membership, ticket: Ticket, link_form=None) -> dict:
    others = []
    if ticket.customer_id is not None:
        others = list(
            tickets_visible_to(membership)
            .filter(customer_id=ticket.customer_id)
            .exclude(pk=ticket.pk)
            .order_by("-opened_at", "-id")[:OTHER_TICKETS]
        )
    return {
        "ticket": ticket,
        "flags": [(f, FLAG_LABELS.get(f, f)) for f in ticket.flags or ()],
        "others": others,
        "can_link": can_link(membership),
        "link_form": link_form or LinkForm(initial={"remember": True}),
        "event_url": (
            reverse("admin:leads_inboundevent_change", args=[ticket.event_id])
            if ticket.event_id and membership.role in ADMINS
            else ""
        ),
    }


@require_GET
def ticket_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = reader(request)
    ticket = access_ticket(membership, public_id)
    context = detail_context(membership, ticket)
    return TemplateResponse(request, "service_feedback/ticket_detail.html", context)


# -- the queue of unmatched tickets ---------------------------------------------------------


@require_GET
def unmatched(request: HttpRequest) -> HttpResponse:
    """Oldest waiting first (the index ticket_unmatched, read backwards)."""
    linker(request)
    waiting = Ticket.objects.unmatched().select_related("channel").order_by("received_at", "id")
    page = Paginator(waiting, QUEUE_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "tickets": list(page.object_list),
        "count": page.paginator.count,
        "link_form": LinkForm(initial={"remember": True}),
        "next": request.get_full_path(),
    }
    return TemplateResponse(request, "service_feedback/unmatched.html", context)


# -- linking by hand ------------------------------------------------------------------------


class LinkForm(forms.Form):
    customer = forms.UUIDField(
        label=gettext_lazy("Customer"),
        error_messages={
            "required": gettext_lazy("Choose the customer."),
            "invalid": gettext_lazy("Choose the customer."),
        },
    )
    remember = forms.BooleanField(
        label=gettext_lazy("Remember: the next ticket from this phone or e-mail matches by itself"),
        required=False,
    )


def _waiting_from_same(ticket: Ticket) -> int:
    """The other unmatched tickets a remembered link takes along (the same phone or
    e-mail), counted before the link."""
    condition = Q()
    if ticket.phone_key:
        condition |= Q(phone_key=ticket.phone_key)
    if ticket.email:
        condition |= Q(email=ticket.email)
    if not condition:
        return 0
    return Ticket.objects.unmatched().exclude(pk=ticket.pk).filter(condition).count()


def _next_url(request: HttpRequest, ticket: Ticket) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("service_feedback:ticket", args=[ticket.public_id])


def _candidates(membership, query: str):
    query = (query or "").strip()
    if not query:
        return []
    visible = customers_visible_to(membership).select_related("owner__user")
    by_code = list(visible.filter(code=query)[:1])  # a customer code, exactly
    found = CustomerFilter({"q": query}, queryset=visible, membership=membership).qs
    found = found.exclude(pk__in=[c.pk for c in by_code]).order_by("name", "id")
    return by_code + list(found[: CANDIDATES - len(by_code)])


@require_http_methods(["GET", "POST"])
def ticket_link(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = reader(request)
    ticket = access_ticket(membership, public_id)
    linker(request)
    if request.method == "GET":
        query = request.GET.get("q", "")[:100]
        context = {"ticket": ticket, "candidates": _candidates(membership, query), "q": query}
        return TemplateResponse(request, "service_feedback/ticket_link_candidates.html", context)
    form = LinkForm(request.POST)
    customer = None
    if form.is_valid():
        try:
            customer = access_customer(membership, form.cleaned_data["customer"])
        except Http404:
            form.add_error("customer", _("Choose the customer."))
    if customer is not None:
        remember = form.cleaned_data["remember"]
        along = _waiting_from_same(ticket) if remember else 0
        try:
            services.ticket_link(
                tenant=request.tenant,
                acting_member=membership,
                ticket=ticket,
                customer=customer,
                remember=remember,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            message = _("Ticket %(ticket)s linked to %(customer)s.") % {
                "ticket": ticket.external_id,
                "customer": customer.name,
            }
            if remember:
                message += " " + ngettext(
                    "%(count)d waiting ticket from the same phone or e-mail was linked with it.",
                    "%(count)d waiting tickets from the same phone or e-mail were linked with it.",
                    along,
                ) % {"count": along}
            messages.success(request, message)
            target = _next_url(request, ticket)
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
    if not request.htmx:
        context = detail_context(membership, ticket, link_form=form)
        return TemplateResponse(request, "service_feedback/ticket_detail.html", context, status=422)
    context = {"ticket": ticket, "link_form": form, "next": request.POST.get("next", "")}
    return TemplateResponse(request, "service_feedback/ticket_link_form.html", context, status=422)
