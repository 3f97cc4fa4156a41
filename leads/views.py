"""Lead pages: the filterable list (with CSV export) and one lead's page."""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django_tables2 import RequestConfig
from django_tables2.export import TableExport

from crm.models import Role
from leads.access import IMPORTERS, LEAD_READERS, access_lead, leads_visible_to
from leads.filters import LeadFilter
from leads.models import Lead
from leads.tables import IdsFirstPaginator, LeadTable

LIST_ROLES = (*LEAD_READERS, Role.REP)
TIMELINE_PER_PAGE = 20
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


def _membership(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in LIST_ROLES:
        raise PermissionDenied(_("Leads are for sales, marketing and admins."))
    return membership


def lead_list(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    qs = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .prefetch_related("tags")
    )
    lead_filter = LeadFilter(request.GET, queryset=qs, membership=membership)
    table = LeadTable(lead_filter.qs)

    export_format = request.GET.get("_export")
    if export_format == TableExport.CSV:
        RequestConfig(request, paginate=False).configure(table)
        return _csv_response(table)

    paginate = {
        "per_page": LeadTable._meta.per_page,
        "paginator_class": IdsFirstPaginator,
        # No index serves the text search: count its matches in the same scan.
        "count_with_ids": bool(lead_filter.form.cleaned_data.get("q")),
    }
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = lead_filter.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": lead_filter,
        "filtered": filtered,
        "count": count,
        # Only asked when nothing matches: does the member see any lead at all?
        "has_leads": count > 0 or (filtered and leads_visible_to(membership).exists()),
        "can_import": membership.role in IMPORTERS,
        "is_admin": membership.role == Role.ADMIN,
        "is_rep": membership.role == Role.REP,
        "export_query": _with_params(request, _export="csv", page=None),
    }
    return TemplateResponse(request, "leads/lead_list.html", context)


def _csv_response(table: LeadTable) -> HttpResponse:
    exporter = TableExport(TableExport.CSV, table)
    # A byte-order mark: without it Excel reads UTF-8 CSV as the local code page.
    response = HttpResponse("\ufeff" + exporter.export(), content_type=exporter.content_type())
    filename = f"leads-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _with_params(request: HttpRequest, **changes) -> str:
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None:
            params[key] = value
    return params.urlencode()


def lead_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _membership(request)
    lead = access_lead(membership, public_id)
    timeline = Paginator(lead.events.select_related("actor"), TIMELINE_PER_PAGE).get_page(
        request.GET.get("page")
    )
    for event in timeline:
        event.original_url = _lead_url(event.data.get("original") if event.data else None)
    context = {
        "lead": lead,
        "timeline": timeline,
        "fields": _fields(lead),
        "tags": lead.tags.all(),
        "revisits": _revisits(membership, lead),
        "inbound": [(e, _pretty(e)) for e in lead.inbound_events.select_related("channel")],
    }
    template = "leads/lead_detail.html"
    if request.htmx and request.htmx.target == "timeline":
        template += "#timeline"  # the partial alone, for htmx paging
    return TemplateResponse(request, template, context)


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
            value = dateformat.format(timezone.localtime(value), "Y-m-d H:i")
        rows.append((field.verbose_name, value, isinstance(field, models.TextField)))
    return rows


def _pretty(event) -> str:
    """The payload as indented JSON, else the body exactly as received."""
    if event.payload is not None:
        return json.dumps(event.payload, ensure_ascii=False, indent=2, sort_keys=True)
    return event.raw_body
