"""The customer list and page, and follow-ups on a customer, over HTTP (F16–F18, F20).

- GET `/customers/` (`customers:list`): the customers this member may read, filtered,
  sorted and paginated, or streamed as CSV (`?_export=csv`).
- GET `/customers/<uuid>/` (`customers:detail`): the customer 360 (F35). The first
  screen at once: the profile, the key figures (crm.contributions figures), the first
  contacts and the follow-up form; the panels other apps contribute (crm.contributions:
  the leads, opportunities, the service review card …), the customer's follow-ups and the
  whole timeline load lazily as they come into view (customers.views_panels,
  `/customers/<uuid>/panels/<key>/`).
- GET/POST `/customers/<uuid>/follow-up/` (`customers:follow_up`): the structured
  follow-up form, in place with htmx. The lead's own form (`leads:follow_up`) and the
  verdict (`leads:verify`) are the leads app's (leads.followups), with the same form and
  round trip (`follow_up_exchange`).
- POST `/customers/<uuid>/contacts/<uuid>/left/` (`customers:contact_left`): a contact
  changed jobs (has left, and where to when known), from its row on the customer page,
  for those who log follow-ups there; the contacts card again (htmx) or a redirect.
- GET `/customers/contact-ended/` (`customers:contact_ended`): "contact ended" fills the
  due date (+3 working days) and shows the status the note suggests.

With `HX-Request` the answers are fragments, errors included (403, 409, 422: base.html
lets htmx swap 4xx); a plain form post gets a redirect or a page. A success sends the
`leadChanged` event (HX-Trigger) so the page around the fragment refreshes its timeline.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from crm import contributions, exports
from crm import search as gram_search
from crm.http import query_with
from crm.roles import CUSTOMER_ALL, CUSTOMER_LIST, SALES
from crm.tables import COUNT_CAP, list_paging, streamed_csv
from customers import exports as customer_exports
from customers import services
from customers.access import access_customer, can_write_customer, customers_visible_to
from customers.filters import CustomerFilter
from customers.forms import ContactLeftForm, InteractionForm
from customers.models import Contact, Customer, Interaction, InteractionKind
from customers.tables import CustomerTable, industry_label, with_lead_counts

CHANGED_EVENT = "leadChanged"
TIMELINE_PER_PAGE = 20
CONTACTS_SHOWN = 5
CONTACTS_MAX = 200
TEMPLATE = "customers/customer_detail.html"
# What other apps contribute to the customer page under (crm.contributions).
PAGE = "customers.customer"
_KEY = re.compile(r"^f[uc]-[0-9a-f]{32}$")


def sales_member(request: HttpRequest):
    """The request's membership if it is of the sales team (crm.roles.SALES), else 403."""
    membership = request.membership
    if membership is None or membership.role not in SALES:
        raise PermissionDenied(_("Leads and customers are for sales, marketing and admins."))
    return membership


def _reader(request: HttpRequest):
    """Anyone with a seat reads customers (customers.access says which)."""
    membership = request.membership
    if membership is None or membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(_("Customers are for the members of this tenant."))
    return membership


def changed(response: HttpResponse) -> HttpResponse:
    """`response` with the event that has the page around a fragment refresh."""
    response["HX-Trigger"] = CHANGED_EVENT
    return response


# -- the follow-up form (F17, F18): shared with the lead page (leads.followups) -------------


def follow_up_form_context(form: InteractionForm, action: str) -> dict:
    """What templates/customers/interaction_form.html needs; pages embed it with this."""
    return {"form": form, "action": action, "key": form.key}


def follow_up_exchange(request, *, key: str, action: str, save, page, done: str) -> HttpResponse:
    """The follow-up form's round trip, for a customer here and a lead in leads.followups.
    GET: the fragment (`key` its element's id, `action` where it posts). POST: the form
    validated, then `save(cleaned_data)` (the service: an Interaction, or ValidationError
    shown on the form); a success answers the saved fragment (htmx, with the changed
    event) or redirects to `done`; a refusal the fragment with its errors (422), or
    without htmx `page(form)`, the whole page with the bound form."""
    if request.method == "GET":
        form = InteractionForm(key=key, autofocus=True)
        context = follow_up_form_context(form, action)
        return TemplateResponse(request, "customers/interaction_form.html", context)
    form = InteractionForm(request.POST, key=key)
    interaction = None
    if form.is_valid():
        try:
            interaction = save(form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
    if interaction is None:
        if not request.htmx:
            return page(form)
        context = follow_up_form_context(form, action)
        return TemplateResponse(request, "customers/interaction_form.html", context, status=422)
    if not request.htmx:
        messages.success(request, _("Follow-up saved."))
        return redirect(done)
    context = {"interaction": interaction, "key": form.key, "form_url": action}
    return changed(TemplateResponse(request, "customers/interaction_saved.html", context))


def refused(request, message: str, status: int, lead=None) -> HttpResponse:
    """A write that may not happen (409): a fragment for htmx, else a page (`lead`: a link
    back to it)."""
    context = {"message": message, "lead": lead}
    template = "customers/refused.html" if request.htmx else "customers/conflict.html"
    return TemplateResponse(request, template, context, status=status)


@require_GET
def contact_ended(request: HttpRequest) -> HttpResponse:
    """ "Contact ended": the due date +3 working days (tenant's time zone) and the status
    the note typed so far suggests, as the form's date block."""
    sales_member(request)
    key = request.GET.get("key", "")
    if not _KEY.match(key):
        raise Http404("No such form.")
    note = request.GET.get("note", "")[:500]
    due, suggestion = services.contact_ended_defaults(note)
    context = {
        "key": key,
        "due_value": due.isoformat(),
        "min_due": services.tenant_today().isoformat(),
        "suggestion": suggestion,
        "ended": True,
    }
    return TemplateResponse(request, "customers/interaction_form.html#due", context)


# -- the customer list --------------------------------------------------------------------------


@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    """Reps see the customers they own, everyone else the tenant's (customers.access);
    a constant number of queries whatever the number of rows."""
    membership = _reader(request)
    if request.GET.get("_export") == "csv":
        # The background export's rows (customers.exports), streamed as they are read.
        stem, rows = customer_exports.customer_rows(membership, request.GET)
        return streamed_csv(rows, f"{stem}.csv", tenant=request.tenant)
    qs = with_lead_counts(customers_visible_to(membership).select_related("owner__user"))
    customer_filter = CustomerFilter(request.GET, queryset=qs, membership=membership)
    table = CustomerTable(customer_filter.qs)
    searched = bool(customer_filter.form.cleaned_data.get("q"))
    exact = request.GET.get("count") == "exact"
    paginate = list_paging(
        CustomerTable._meta.per_page,
        exact=exact,
        searched=searched,
        walked=customer_filter.search_walked,
        count_cap=COUNT_CAP,
        search_cap=gram_search.SEARCH_CAP,
        rows_from=lambda: (
            CustomerFilter(request.GET, queryset=qs, membership=membership, search_walk=True).qs
        ),
    )
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = customer_filter.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": customer_filter,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "count_estimated": table.paginator.count_capped and not searched,
        "count_cap": gram_search.SEARCH_CAP if searched else COUNT_CAP,
        "exact_count_query": query_with(request, count="exact", page=None),
        # Only asked when nothing matches: does the member see any customer at all?
        "has_customers": count > 0 or (filtered and customers_visible_to(membership).exists()),
        "is_rep": membership.role not in CUSTOMER_ALL,  # a rep: "my customers"
        "export_query": query_with(request, _export="csv", page=None),
        # A long list is exported by a worker (crm.exports): the button queues it.
        "export_background": exports.in_background(count, table.paginator.count_capped),
        "export_kind": customer_exports.KIND,
        "export_list_query": exports.list_query(request.GET),
    }
    return TemplateResponse(request, "customers/customer_list.html", context)


# -- the customer page --------------------------------------------------------------------------


def follow_up_form(customer: Customer, *, data=None, autofocus: bool = False) -> InteractionForm:
    """The follow-up form for a customer (ids unique per customer on a page)."""
    return InteractionForm(data, key="fc-" + customer.public_id.hex, autofocus=autofocus)


@require_http_methods(["GET", "POST"])
def customer_follow_up(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The follow-up form on a customer, for its owner and crm.roles.CUSTOMER_WRITERS (404
    for anyone else, as for a customer they cannot read)."""
    membership = sales_member(request)
    customer = access_customer(membership, public_id, write=True)

    def save(data) -> Interaction:
        return services.interaction_log(
            tenant=request.tenant,
            acting_member=membership,
            customer=customer,
            channel=data["channel"],
            talk_tags=data["talk_tags"],
            pains=data["pains"],
            roles=data["roles"],
            note=data["note"],
            next_action=data["next_action"],
            next_action_due=data["next_action_due"],
        )

    return follow_up_exchange(
        request,
        key="fc-" + customer.public_id.hex,
        action=reverse("customers:follow_up", args=[customer.public_id]),
        save=save,
        page=lambda form: _customer_page(request, membership, customer, form=form, status=422),
        done=reverse("customers:detail", args=[customer.public_id]),
    )


@dataclass
class FollowUpEntry:
    """A follow-up logged on the customer itself, as its timeline shows it: what the
    timeline reads of every entry (the kind and its label, the words, when and who)."""

    interaction: Interaction
    kind = InteractionKind.FOLLOW_UP.value
    lead_id = None

    @property
    def pk(self) -> int:
        return self.interaction.pk

    def get_kind_display(self) -> str:
        return str(InteractionKind.FOLLOW_UP.label)

    @property
    def at(self):
        return self.interaction.at

    @property
    def actor(self):
        return self.interaction.by.user

    @property
    def contact(self):
        return self.interaction.contact

    @property
    def text(self) -> str:
        return services.follow_up_text(services.follow_up_data(self.interaction))


def _own_entries(ids: list[int]) -> list[FollowUpEntry]:
    items = Interaction.objects.filter(pk__in=ids).select_related(
        "by__user", "next_action", "contact"
    )
    return [FollowUpEntry(item) for item in items]


# The follow-ups logged on the customer itself (those on a lead are in its trail).
_OWN = contributions.TimelineSource(
    "interaction",
    rows=lambda customer: Interaction.objects.filter(customer=customer, lead__isnull=True),
    load=_own_entries,
)


def customer_timeline(customer: Customer, page, *, since=None) -> object:
    """One page of the customer's whole trail, newest first: what other apps contribute
    (crm.contributions: the leads app, every timeline entry of the leads the customer came
    from: intake, tags, assignment, verification, follow-ups …) and the follow-ups logged
    on the customer itself (`since`: from then on). A count, the page's (time, id, source)
    rows, and one query per source on the page, whatever its size."""
    sources = [*contributions.timeline_sources(PAGE), _OWN]
    return contributions.merged_timeline(sources, customer, page, TIMELINE_PER_PAGE, since=since)


@require_GET
def customer_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The customer 360's first screen (F35): the profile, the key figures, the first
    contacts and the follow-up form, at once; every other panel a placeholder that htmx
    fills when it comes into view (customers.views_panels). `?contacts=all`: every
    contact (with htmx, the contacts card alone)."""
    membership = _reader(request)
    customer = access_customer(membership, public_id)
    if request.htmx and request.htmx.target == "customer-contacts":
        can_edit = can_write_customer(membership, customer)
        context = {"customer": customer, **_contacts(customer, every=True, can_edit=can_edit)}
        return TemplateResponse(request, TEMPLATE + "#contacts", context)
    return _customer_page(request, membership, customer)


def _contacts(customer: Customer, *, every: bool, can_edit=False, left_form=None) -> dict:
    """The customer's first CONTACTS_SHOWN contacts (`every`: up to CONTACTS_MAX) and
    whether there are more; `can_edit`: each row not marked as left has the "changed
    jobs" form (`left_form`: a bound one with its errors, on its contact's row)."""
    window = contributions.PanelWindow(CONTACTS_MAX if every else CONTACTS_SHOWN, None)
    contacts, more = window.rows(customer.contacts.order_by("created_at", "id"))
    if left_form is not None:
        for contact in contacts:
            if contact.pk == left_form.contact.pk:
                contact.left_form = left_form
    return {
        "contacts": contacts,
        "contacts_more": more,
        "contacts_all": every,
        "can_edit_contacts": can_edit,
    }


def _customer_page(
    request, membership, customer: Customer, *, form=None, left_form=None, status=200
):
    """The customer page; `form` a bound follow-up form whose errors are shown,
    `left_form` a bound "changed jobs" form of a contact."""
    can_log = can_write_customer(membership, customer)
    every = "all" in (request.GET.get("contacts"), request.POST.get("contacts"))
    context = {
        "customer": customer,
        "industry": industry_label(customer.industry),
        **_contacts(customer, every=every, can_edit=can_log, left_form=left_form),
        # The key figures other apps add (crm.contributions): one query.
        "figures": contributions.figures_for(PAGE, membership, Customer, customer.pk),
        # What other apps show here (crm.contributions), in their order: an eager panel
        # rendered now, a lazy one as its placeholder (customers.views_panels serves it).
        "panels": [
            {
                "key": spec.key,
                "title": spec.title,
                "url": reverse("customers:panel", args=[customer.public_id, spec.key]),
            }
            if spec.lazy
            else {"html": html}
            for spec, html in _eager_rendered(request, membership, customer)
        ],
        "timeline_url": reverse("customers:panel", args=[customer.public_id, "timeline"]),
        "can_log": can_log,
    }
    if can_log:
        form = form or follow_up_form(customer)
        action = reverse("customers:follow_up", args=[customer.public_id])
        context.update(follow_up_form_context(form, action))
    return TemplateResponse(request, TEMPLATE, context, status=status)


@require_POST
def contact_left(request: HttpRequest, public_id: uuid.UUID, contact_id: uuid.UUID) -> HttpResponse:
    """A contact of the customer changed jobs (customers.services.contact_mark_left), for
    those who log follow-ups on the customer (404 for anyone else, and for a contact of
    another customer). htmx: the contacts card, 422 with the field errors; a plain post: a
    redirect to the page, or the page with the errors under the contact."""
    membership = sales_member(request)
    customer = access_customer(membership, public_id, write=True)
    contact = Contact.objects.filter(customer=customer, public_id=contact_id).first()
    if contact is None:
        raise Http404("No such contact.")
    form = ContactLeftForm(request.POST, contact=contact)
    every = request.POST.get("contacts") == "all"
    saved = False
    if form.is_valid():
        try:
            services.contact_mark_left(
                tenant=request.tenant,
                acting_member=membership,
                contact=contact,
                new_company=form.cleaned_data["new_company"],
            )
            saved = True
        except ValidationError as exc:
            form.add_error(None, exc)
    if not request.htmx:
        if not saved:
            return _customer_page(request, membership, customer, left_form=form, status=422)
        messages.success(request, _("Job change recorded."))
        url = reverse("customers:detail", args=[customer.public_id])
        return redirect(url + ("?contacts=all" if every else "") + "#customer-contacts")
    shown = _contacts(customer, every=every, can_edit=True, left_form=None if saved else form)
    context = {"customer": customer, **shown}
    return TemplateResponse(request, TEMPLATE + "#contacts", context, status=200 if saved else 422)


def _eager_rendered(request, membership, customer: Customer):
    """(spec, html) of each panel of the page in order: the eager ones rendered (those with
    nothing to show left out), the lazy ones with no html."""
    for spec in contributions.page_panels(PAGE):
        if spec.lazy:
            yield spec, ""
            continue
        found = spec.panel(request, membership, customer)
        if found is not None:
            yield spec, render_to_string(found[0], found[1], request)
