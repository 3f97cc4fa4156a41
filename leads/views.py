"""Lead pages: the filterable list (with CSV export) and one lead's page: its fields, its
timeline, its assignment card ("why this rep" and the assignment forms:
leads.assignment.lead_card, posted to leads.assignment.views) and its verification card.
The rep's own pages (my profile, "why did I not get it", the training card) are in
leads.assignment.views."""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django_tables2 import RequestConfig

from crm import contributions, exports, roles
from crm import search as gram_search
from crm.formatting import format_datetime, format_phone
from crm.http import query_with
from crm.metrics import read_as_reports
from crm.models import Role
from crm.tables import COUNT_CAP, list_paging, streamed_csv
from leads import exports as lead_exports
from leads.access import access_lead, leads_visible_to
from leads.activity import rescue
from leads.assignment.lead_card import assignment_context
from leads.filters import LeadFilter
from leads.intake.services import UTM_LABELS
from leads.models import Lead, LeadEvent, LeadStatus
from leads.tables import LeadTable

TIMELINE_PER_PAGE = 20
# What other apps contribute to the lead page under (crm.contributions).
PAGE = "leads.lead"
# Shown on the lead's page, in this order (labels are the fields' verbose names).
DETAIL_FIELDS = (
    "company",
    "contact_name",
    "phone",
    "email",
    "title",
    "industry",
    "industry_remark",
    "province",
    "city",
    "company_size",
    "budget",
    "in_tender",
    "sample_provided",
    "message",
    "external_id",
    "channel",
    "source_grade",
    "status",
    "owner",
    "registry_status",
    "created_at",
)


def lead_membership(request: HttpRequest):
    """The member asking for a lead page, or 403 unless their role opens the lead list."""
    membership = request.membership
    if membership is None or membership.role not in roles.LEAD_LIST:
        raise PermissionDenied(_("Leads are for sales, marketing and admins."))
    return membership


@read_as_reports  # opened from the lead-quality report's figures: read where they were
def lead_list(request: HttpRequest) -> HttpResponse:
    membership = lead_membership(request)
    if request.GET.get("_export") == "csv":
        return _csv_response(request, membership)
    qs = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .prefetch_related("tags")
    )
    lead_filter = LeadFilter(request.GET, queryset=qs, membership=membership)
    table = LeadTable(lead_filter.qs)

    searched = bool(lead_filter.form.cleaned_data.get("q"))
    exact = request.GET.get("count") == "exact"
    paginate = list_paging(
        LeadTable._meta.per_page,
        exact=exact,
        searched=searched,
        walked=lead_filter.search_walked,
        count_cap=COUNT_CAP,
        search_cap=gram_search.SEARCH_CAP,
        rows_from=lambda: (
            LeadFilter(request.GET, queryset=qs, membership=membership, search_walk=True).qs
        ),
    )
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = lead_filter.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": lead_filter,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "count_estimated": table.paginator.count_capped and not searched,
        "count_cap": gram_search.SEARCH_CAP if searched else COUNT_CAP,
        "exact_count_query": query_with(request, count="exact", page=None),
        # Only asked when nothing matches: does the member see any lead at all?
        "has_leads": count > 0 or (filtered and leads_visible_to(membership).exists()),
        "can_import": membership.role in roles.IMPORTERS,
        "is_admin": membership.role == Role.ADMIN,
        "is_rep": membership.role in roles.OWNERS,
        "export_query": query_with(request, _export="csv", page=None),
        # A long list is exported by a worker (crm.exports): the button queues it.
        "export_background": exports.in_background(count, table.paginator.count_capped),
        "export_kind": lead_exports.KIND,
        "export_list_query": exports.list_query(request.GET),
    }
    return TemplateResponse(request, "leads/lead_list.html", context)


def _csv_response(request: HttpRequest, membership) -> StreamingHttpResponse:
    """Every lead of the list (its filters and sort), streamed as it is read: the first
    bytes leave at once and memory stays flat whatever the number of rows. The rows are
    the background export's (leads.exports)."""
    stem, rows = lead_exports.lead_rows(membership, request.GET)
    return streamed_csv(rows, f"{stem}.csv", tenant=request.tenant)


def lead_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = lead_membership(request)
    lead = access_lead(membership, public_id)
    template = "leads/lead_detail.html"
    if request.htmx and request.htmx.target == "timeline":
        # The partial alone, for htmx paging.
        return TemplateResponse(request, template + "#timeline", timeline_context(request, lead))
    if request.htmx and request.htmx.target == "touch-card":
        # The contacts card alone, refreshed after a follow-up (the `leadChanged` event).
        context = {"lead": lead, **assignment_context(membership, lead)}
        return TemplateResponse(request, template + "#touch", context)
    return TemplateResponse(request, template, _detail_context(request, membership, lead))


# The lead's own timeline entries.
_OWN = contributions.TimelineSource(
    "lead",
    rows=lambda lead: LeadEvent.objects.filter(lead=lead),
    load=lambda ids: LeadEvent.objects.filter(pk__in=ids).select_related("actor"),
)


def timeline_context(request: HttpRequest, lead: Lead, *, page=None) -> dict:
    """One page of the lead's timeline, newest first: its own entries and what other apps
    contribute (crm.contributions: the opportunities' history), merged and paged in the
    database as on the customer page; one query per source on the page."""
    sources = [_OWN, *contributions.timeline_sources(PAGE)]
    timeline = contributions.merged_timeline(
        sources, lead, page if page is not None else request.GET.get("page"), TIMELINE_PER_PAGE
    )
    for event in timeline.object_list:
        if isinstance(event, LeadEvent):
            event.original_url = _lead_url(event.data.get("original") if event.data else None)
    return {"lead": lead, "timeline": timeline}


def _detail_context(request: HttpRequest, membership, lead: Lead, **forms_) -> dict:
    context = {
        **timeline_context(request, lead),
        "fields": _fields(lead),
        "utm": [(key, UTM_LABELS.get(key, key), value) for key, value in (lead.utm or {}).items()],
        "tags": lead.tags.all(),
        "revisits": _revisits(membership, lead),
        "inbound": [(e, _pretty(e)) for e in lead.inbound_events.select_related("channel")],
        # What other apps show here (crm.contributions): the lead's opportunities.
        "panels": [
            render_to_string(template, panel_context, request)
            for template, panel_context in contributions.panels_for(PAGE, request, membership, lead)
        ],
    }
    # The lead's latest activity index (F41), a badge with its three parts.
    activity = rescue.latest_for(lead)
    context["activity"] = activity
    context["activity_parts"] = rescue.explained(activity) if activity else []
    context.update(assignment_context(membership, lead, **forms_))
    context.update(_verification_context(membership, lead, **forms_))
    return context


# -- verification and follow-ups on the lead's page (F16, F17; customers/views.py) -----------


def _verification_context(membership, lead: Lead, **forms_) -> dict:
    """The verification card (the verdict, or the owner's four buttons) and the owner's
    follow-up form (a bound one passed in keeps its errors)."""
    from leads.followups_context import follow_up_context, follow_up_form, verify_context

    context = verify_context(
        membership, lead, errors=forms_.get("verify_errors"), values=forms_.get("verify_values")
    )
    is_owner = lead.owner_id is not None and lead.owner_id == membership.pk
    context["can_follow_up"] = is_owner and lead.status != LeadStatus.INVALID
    if context["can_follow_up"]:
        form = forms_.get("follow_up_form") or follow_up_form(lead)
        context["follow_up"] = follow_up_context(lead, form)
    return context


def render_lead_page(request: HttpRequest, membership, lead: Lead, *, status=200, **forms_):
    """The whole lead page again (a plain form post with errors), bound forms kept."""
    context = _detail_context(request, membership, lead, **forms_)
    return TemplateResponse(request, "leads/lead_detail.html", context, status=status)


def _revisits(membership, lead: Lead):
    """The revisits of an original that this member may see (newest first)."""
    if lead.revisit_of_id is not None:
        return []
    return list(leads_visible_to(membership).filter(revisit_of=lead).select_related("channel")[:50])


def _lead_url(public_id) -> str | None:
    try:
        return reverse("leads:detail", args=[uuid.UUID(str(public_id))])
    except ValueError:
        return None


def _fields(lead: Lead) -> list[tuple[str, object, bool]]:
    """(label, display value, multi-line) for each of DETAIL_FIELDS."""
    rows = []
    for name in DETAIL_FIELDS:
        field = Lead._meta.get_field(name)
        value = getattr(lead, name)
        if field.choices:
            value = getattr(lead, f"get_{name}_display")()
        elif name == "owner":
            value = value.display_name if value else None
        elif isinstance(value, bool):
            value = _("Yes") if value else _("No")
        elif name == "created_at":
            value = format_datetime(value)
        elif name == "phone":
            value = format_phone(value)
        rows.append((field.verbose_name, value, isinstance(field, models.TextField)))
    return rows


def _pretty(event) -> str:
    """The payload as indented JSON, else the body exactly as received."""
    if event.payload is not None:
        return json.dumps(event.payload, ensure_ascii=False, indent=2, sort_keys=True)
    return event.raw_body
