"""Verification and follow-ups over HTTP (F16–F18, F20), the customer list and page.

- POST `/leads/<uuid>/verify/` (`leads:verify`): the owner's one-click verdict.
- GET/POST `/leads/<uuid>/follow-up/` (`leads:follow_up`) and `/customers/<uuid>/follow-up/`
  (`customers:follow_up`): the structured follow-up form, in place with htmx.
- GET `/customers/contact-ended/` (`customers:contact_ended`): "contact ended" fills the
  due date (+3 working days) and shows the status the note suggests.
- GET `/customers/` (`customers:list`): the customers this member may read, filtered,
  sorted and paginated, or streamed as CSV (`?_export=csv`).
- GET `/customers/<uuid>/` (`customers:detail`): the customer with its contacts, leads,
  full timeline and the follow-up form.

With `HX-Request` the answers are fragments, errors included (403, 409, 422: base.html
lets htmx swap 4xx); a plain form post gets a redirect or a page. A success sends the
`leadChanged` event (HX-Trigger) so the page around the fragment refreshes its timeline.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from crm.http import query_with
from crm.models import Role
from crm.tables import IdsFirstPaginator, streamed_csv
from crm.tenancy import tenant_today
from customers import services
from customers.access import (
    CUSTOMER_ROLES,
    access_customer,
    can_log_on_customer,
    customers_visible_to,
)
from customers.filters import CustomerFilter
from customers.forms import InteractionForm
from customers.models import Customer, Interaction
from customers.tables import CustomerTable, industry_label, with_lead_counts
from leads.models import InvalidReason, Lead, LeadEvent, LeadEventKind, LeadStatus

CHANGED_EVENT = "leadChanged"
TIMELINE_PER_PAGE = 20
TEMPLATE = "customers/customer_detail.html"
SALES_ROLES = (Role.REP, Role.MANAGER, Role.MARKETING, Role.ADMIN)
_KEY = re.compile(r"^f[uc]-[0-9a-f]{32}$")
# The customer list counts its rows up to this many (crm.tables.IdsFirstPaginator).
COUNT_CAP = 10_000


def _member(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in SALES_ROLES:
        raise PermissionDenied(_("Leads and customers are for sales, marketing and admins."))
    return membership


def _reader(request: HttpRequest):
    """Anyone with a seat reads customers (customers.access says which)."""
    membership = request.membership
    if membership is None or membership.role not in CUSTOMER_ROLES:
        raise PermissionDenied(_("Customers are for the members of this tenant."))
    return membership


def _lead(public_id) -> Lead:
    """The tenant's lead, locked for the change, or 404 (another tenant's id included)."""
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("tenant", "owner__user", "customer", "contact", "invalid_reason")
        .filter(public_id=public_id)
        .first()
    )
    if lead is None:
        raise Http404("No such lead.")
    return lead


def _changed(response: HttpResponse) -> HttpResponse:
    response["HX-Trigger"] = CHANGED_EVENT
    return response


# -- verification (F16) -----------------------------------------------------------------------


VERIFY_FIELDS = ("outcome", "invalid_reason", "visit_date", "next_action", "next_action_due")


def verify_form_context(*, today, errors=None, values=None, reasons=(), actions=()) -> dict:
    """What templates/leads/verify_forms.html needs besides the URL and the key: the
    pick lists, the dates' bounds and defaults, and a refused post's values and errors."""
    from leads.models import Verification

    values = dict(values or {})
    if values.get("outcome") != Verification.VALID_MORE_INFO:
        values["next_action_due"] = today.isoformat()  # a first look: today, changeable
    return {
        "verify_errors": errors or {},
        "verify_values": values,
        "invalid_reasons": list(reasons),
        "invalid_choices": [
            (o.value, o.label) for o in Verification if o not in Verification.valid()
        ],
        "next_actions": list(actions),
        "min_date": today.isoformat(),
    }


def verify_context(
    membership, lead: Lead, *, error: str = "", errors=None, values=None, in_place=False
) -> dict:
    """The verification card: the verdict and the lead's open next step, or for the owner
    the four verdicts, each with what it needs (`values` and `errors`: a refused post's).
    `in_place`: the forms post with htmx into the element around them (the board)."""
    from leads.models import Verification
    from leads.verification import invalid_reasons

    can_verify = (
        not lead.verification
        and lead.owner_id is not None
        and lead.owner_id == membership.pk
        and lead.status == LeadStatus.ASSIGNED
    )
    context = {
        "lead": lead,
        "can_verify": can_verify,
        "valid_outcomes": [o for o in Verification if o in Verification.valid()],
        "invalid_outcomes": [o for o in Verification if o not in Verification.valid()],
        "verify_error": error,
        "verify_url": reverse("leads:verify", args=[lead.public_id]),
        "verify_key": "verify",
        "in_place": in_place,
        "next_step": None,
    }
    if can_verify:
        from customers.models import PresetKind

        context.update(
            verify_form_context(
                today=services.tenant_today(),
                errors=errors,
                values=values,
                reasons=invalid_reasons(),
                actions=services.presets(PresetKind.ACTION),
            )
        )
    else:
        context["verify_errors"] = errors or {}
        if lead.verification and lead.owner_id is not None:
            context["next_step"] = (
                Interaction.objects.filter(
                    lead=lead, by_id=lead.owner_id, next_done_at__isnull=True
                )
                .select_related("next_action")
                .order_by("-at", "-id")
                .first()
            )
    return context


def _date_field(text: str, errors: dict, name: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = [_("Enter a date like 2026-03-10.")]
        return None


def _verify_input(post) -> tuple[dict, dict]:
    """The verdict's fields from a POST: (the service's keyword arguments, parse errors)."""
    from customers.models import PresetKind
    from leads.models import Verification
    from leads.verification import invalid_reasons

    outcome = post.get("outcome", "")
    values, errors = {"outcome": outcome}, {}
    reason_id = post.get("invalid_reason", "").strip()
    if reason_id and outcome not in Verification.valid():
        reason = (
            invalid_reasons().filter(pk=int(reason_id)).first() if reason_id.isdigit() else None
        )
        # Not one of the tenant's: a stand-in the service refuses with its message.
        values["invalid_reason"] = reason or InvalidReason(pk=0, tenant_id=0)
    if outcome == Verification.VALID_VISIT:
        values["visit_date"] = _date_field(post.get("visit_date"), errors, "visit_date")
    elif outcome == Verification.VALID_MORE_INFO:
        action_id = post.get("next_action", "").strip()
        if action_id:
            try:
                values["next_action"] = (
                    services.presets(PresetKind.ACTION).filter(public_id=action_id).first()
                )
            except ValidationError:
                values["next_action"] = None
            if values["next_action"] is None:
                errors["next_action"] = [_("Choose an action from the list.")]
        values["next_action_due"] = _date_field(
            post.get("next_action_due"), errors, "next_action_due"
        )
    return values, errors


@require_POST
def lead_verify_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The owner's verdict: `outcome`; `invalid_reason` (an id) for an invalid one;
    `visit_date` for "visit booked"; `next_action` (a preset's uuid) and
    `next_action_due` for "needs more information". 403 for anyone but the owner, 409
    for a verified lead, 422 with the field errors for anything missing or wrong."""
    from leads.verification import VerificationError, lead_verify

    membership = _member(request)
    lead = _lead(public_id)
    values, parse_errors = _verify_input(request.POST)
    posted = {name: request.POST.get(name, "") for name in VERIFY_FIELDS}
    try:
        lead = lead_verify(lead, by=membership, **values)
    except VerificationError as exc:
        lead.refresh_from_db()
        if not request.htmx:
            if exc.status == 403:
                raise PermissionDenied(exc.message) from exc
            context = {"message": exc.message, "lead": lead}
            return TemplateResponse(request, "customers/conflict.html", context, status=exc.status)
        context = verify_context(membership, lead, error=exc.message, in_place=True)
        return TemplateResponse(
            request, "leads/lead_detail.html#verify", context, status=exc.status
        )
    except ValidationError as exc:
        # A value that did not parse says so, rather than "missing".
        errors = {**exc.message_dict, **parse_errors}
        if not request.htmx:
            from leads.views import render_lead_page

            return render_lead_page(
                request, membership, lead, status=422, verify_errors=errors, verify_values=posted
            )
        context = verify_context(membership, lead, errors=errors, values=posted, in_place=True)
        return TemplateResponse(request, "leads/lead_detail.html#verify", context, status=422)
    if not request.htmx:
        messages.success(
            request,
            _("Verified: %(outcome)s.") % {"outcome": lead.get_verification_display()},
        )
        return redirect("leads:detail", public_id=lead.public_id)
    response = TemplateResponse(
        request, "leads/lead_detail.html#verify", verify_context(membership, lead, in_place=True)
    )
    return _changed(response)


# -- follow-ups (F17, F18) --------------------------------------------------------------------


def _form_key(obj) -> str:
    return ("fu-" if isinstance(obj, Lead) else "fc-") + obj.public_id.hex


def follow_up_form(obj, *, data=None, autofocus: bool = False) -> InteractionForm:
    """The follow-up form for a lead or a customer (ids unique per object on a page)."""
    return InteractionForm(data, key=_form_key(obj), autofocus=autofocus)


def follow_up_context(obj, form: InteractionForm) -> dict:
    """What templates/customers/interaction_form.html needs; others embed it with this."""
    if isinstance(obj, Lead):
        action = reverse("leads:follow_up", args=[obj.public_id])
    else:
        action = reverse("customers:follow_up", args=[obj.public_id])
    return {"form": form, "action": action, "key": form.key}


def _log_follow_up(request, membership, obj, *, lead=None, customer=None) -> HttpResponse:
    if request.method == "GET":
        form = follow_up_form(obj, autofocus=True)
        context = follow_up_context(obj, form)
        return TemplateResponse(request, "customers/interaction_form.html", context)
    form = follow_up_form(obj, data=request.POST)
    interaction = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            interaction = services.interaction_log(
                by=membership,
                lead=lead,
                customer=customer,
                channel=data["channel"],
                talk_tags=data["talk_tags"],
                pains=data["pains"],
                roles=data["roles"],
                note=data["note"],
                next_action=data["next_action"],
                next_action_due=data["next_action_due"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if interaction is None:
        if not request.htmx and lead is not None:
            from leads.views import render_lead_page

            return render_lead_page(request, membership, lead, status=422, follow_up_form=form)
        if not request.htmx:
            return _customer_page(request, membership, customer, form=form, status=422)
        context = follow_up_context(obj, form)
        return TemplateResponse(request, "customers/interaction_form.html", context, status=422)
    if not request.htmx:
        messages.success(request, _("Follow-up saved."))
        if lead is not None:
            return redirect("leads:detail", public_id=lead.public_id)
        return redirect("customers:detail", public_id=customer.public_id)
    context = {
        "interaction": interaction,
        "key": form.key,
        "form_url": follow_up_context(obj, form)["action"],
    }
    return _changed(TemplateResponse(request, "customers/interaction_saved.html", context))


@require_http_methods(["GET", "POST"])
def lead_follow_up(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The lead owner's follow-up form (GET: the fragment; POST: save it)."""
    membership = _member(request)
    lead = _lead(public_id)
    if lead.owner_id != membership.pk:
        raise PermissionDenied(_("Only the lead's owner logs its follow-ups."))
    if lead.status == LeadStatus.INVALID:
        return _refused(
            request, _("This lead was verified as invalid: it takes no follow-ups."), 409, lead
        )
    return _log_follow_up(request, membership, lead, lead=lead)


def _refused(request, message: str, status: int, lead=None) -> HttpResponse:
    context = {"message": message, "lead": lead}
    template = "customers/refused.html" if request.htmx else "customers/conflict.html"
    return TemplateResponse(request, template, context, status=status)


@require_GET
def contact_ended(request: HttpRequest) -> HttpResponse:
    """ "Contact ended": the due date +3 working days (tenant's time zone) and the status
    the note typed so far suggests, as the form's date block."""
    _member(request)
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
    qs = with_lead_counts(customers_visible_to(membership).select_related("owner__user"))
    customer_filter = CustomerFilter(request.GET, queryset=qs, membership=membership)
    table = CustomerTable(customer_filter.qs)
    if request.GET.get("_export") == "csv":
        RequestConfig(request, paginate=False).configure(table)
        filename = f"customers-{tenant_today():%Y%m%d}.csv"
        return streamed_csv(table.as_values(), filename, tenant=request.tenant)
    searched = bool(customer_filter.form.cleaned_data.get("q"))
    paginate = {
        "per_page": CustomerTable._meta.per_page,
        "paginator_class": IdsFirstPaginator,
        # No index serves the text search: count its matches in the same scan (exactly:
        # the scan reads them all anyway). Otherwise count up to COUNT_CAP.
        "count_with_ids": searched,
        "count_cap": None if searched else COUNT_CAP,
    }
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = customer_filter.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": customer_filter,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "count_cap": COUNT_CAP,
        # Only asked when nothing matches: does the member see any customer at all?
        "has_customers": count > 0 or (filtered and customers_visible_to(membership).exists()),
        "is_rep": membership.role == Role.REP,
        "export_query": query_with(request, _export="csv", page=None),
    }
    return TemplateResponse(request, "customers/customer_list.html", context)


# -- the customer page --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def customer_follow_up(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _member(request)
    customer = access_customer(membership, public_id)
    if not can_log_on_customer(membership, customer):
        raise PermissionDenied(_("Only the customer's owner and managers log follow-ups here."))
    return _log_follow_up(request, membership, customer, customer=customer)


def customer_timeline(customer: Customer, page) -> object:
    """One page of the customer's whole trail, newest first: every timeline entry of the
    leads it came from (intake, tags, assignment, verification, follow-ups …) and the
    follow-ups logged on the customer itself. Three queries per page whatever its size."""
    events = LeadEvent.objects.filter(lead__customer=customer).values_list(
        "at", "id", Value("event")
    )
    own = Interaction.objects.filter(customer=customer, lead__isnull=True).values_list(
        "at", "id", Value("interaction")
    )
    rows = events.union(own, all=True).order_by("-at", "-id")
    timeline = Paginator(rows, TIMELINE_PER_PAGE).get_page(page)
    ids = {"event": [], "interaction": []}
    for _at, pk, source in timeline.object_list:
        ids[source].append(pk)
    found = {}
    if ids["event"]:
        for event in LeadEvent.objects.filter(pk__in=ids["event"]).select_related("actor", "lead"):
            found["event", event.pk] = event
    if ids["interaction"]:
        for item in Interaction.objects.filter(pk__in=ids["interaction"]).select_related(
            "by__user", "next_action", "contact"
        ):
            event = LeadEvent(
                kind=LeadEventKind.FOLLOW_UP,
                at=item.at,
                actor=item.by.user,
                data=services.follow_up_data(item),
            )
            event.contact = item.contact
            found["interaction", item.pk] = event
    timeline.object_list = [found[source, pk] for _at, pk, source in timeline.object_list]
    return timeline


@require_GET
def customer_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _reader(request)
    customer = access_customer(membership, public_id)
    if request.htmx and request.htmx.target == "customer-timeline":
        timeline = customer_timeline(customer, request.GET.get("page"))
        return TemplateResponse(
            request, TEMPLATE + "#timeline", {"customer": customer, "timeline": timeline}
        )
    return _customer_page(request, membership, customer)


def _customer_page(request, membership, customer: Customer, *, form=None, status=200):
    """The customer page; `form` a bound follow-up form whose errors are shown."""
    from leads.access import leads_visible_to

    timeline = customer_timeline(customer, request.GET.get("page"))
    visible = set(
        leads_visible_to(membership).filter(customer=customer).values_list("pk", flat=True)
    )
    leads = list(
        Lead.objects.filter(customer=customer)
        .select_related("channel", "owner__user")
        .order_by("-created_at", "-id")[:50]
    )
    can_log = can_log_on_customer(membership, customer)
    context = {
        "customer": customer,
        "industry": industry_label(customer.industry),
        "contacts": list(customer.contacts.all()),
        "leads": [(lead, lead.pk in visible) for lead in leads],
        "timeline": timeline,
        "can_log": can_log,
    }
    if can_log:
        context.update(follow_up_context(customer, form or follow_up_form(customer)))
    return TemplateResponse(request, TEMPLATE, context, status=status)
