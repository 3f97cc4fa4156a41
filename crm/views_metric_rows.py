"""A figure's drill-down list at /reports/metrics/<key>/ (crm.metric_rows): the rows a
registered metric counts for a period and filters, 50 a page, their CSV, and the figure
itself computed beside them from the same definition."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm import exports
from crm.dashboard import figure_text
from crm.http import query_with
from crm.metric_rows import (
    FilterError,
    Rows,
    check_filters,
    csv_name,
    csv_rows,
    dimension_label,
    figure_and_count,
    paged_table,
    readable_metric,
    requested_filters,
)
from crm.metrics import COUNT, REGION, REP, reading
from crm.models import Role
from crm.periods import PRESETS, PeriodForm, local_today
from crm.roles import DASHBOARD
from crm.tables import streamed_csv

TEMPLATE = "crm/metric_rows.html"


def _plain(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


@require_GET
def metric_rows(request: HttpRequest, key: str) -> HttpResponse:
    membership = request.membership
    if membership is None:
        raise PermissionDenied(_("The rows of a figure are read in a tenant."))
    metric = readable_metric(membership, key)
    tenant = request.tenant
    export = request.GET.get("_export")
    if export and export != "csv":
        return _plain(_("Unknown export: the list exports as csv."))
    form = PeriodForm(request.GET, today=local_today(tenant))
    context = {"metric": metric, "form": form}
    if not form.is_valid():
        if export:
            return _plain(form.error_text())
        return TemplateResponse(request, TEMPLATE, context, status=400)
    period = form.chosen
    forced = membership.role == Role.REP
    with reading(tenant) as alias:
        try:
            filters, rep = requested_filters(request.GET, tenant=tenant, using=alias)
            if forced:  # a rep reads their own rows, whatever the link said
                filters[REP], rep = membership.pk, membership
            check_filters(metric, filters)
        except FilterError as exc:
            if export:
                return _plain(str(exc))
            return TemplateResponse(request, TEMPLATE, {**context, "error": str(exc)}, status=400)
        if export:
            rows = csv_rows(
                metric, tenant=tenant, start=period.start, end=period.end, filters=filters
            )
            filename = f"{csv_name(metric, period.start, period.end)}.csv"
            return streamed_csv(rows, filename, tenant=tenant)
        figure, count = figure_and_count(
            metric, tenant=tenant, start=period.start, end=period.end, filters=filters, using=alias
        )
        rows = Rows(metric, tenant, period.start, period.end, filters, alias)
        table = paged_table(rows, count=count, page=request.GET.get("page"))
    context.update(
        {
            "period": period,
            "figure": figure,
            "figure_text": figure_text(figure, metric.unit),
            "is_count": metric.aggregate == COUNT,
            "count": count,
            "table": table,
            "active_filters": _active_filters(request, metric, filters, rep, forced),
            "preset_links": _preset_links(request, period.preset),
            "dashboard_url": _dashboard_url(period, filters)
            if membership.role in DASHBOARD
            else "",
            # A long list is written by a worker (crm.exports) rather than streamed.
            "export_background": exports.in_background(count),
            "export_kind": "metric_rows",
            "export_list_query": urlencode(
                {**dict(request.GET.items()), "key": metric.key, **period.query()}
            ),
            "export_query": query_with(request, _export="csv", page=None),
        }
    )
    return TemplateResponse(request, TEMPLATE, context)


def _active_filters(request, metric, filters, rep, forced) -> list[dict]:
    """Each filter with its text and the link without it (a rep's own filter stays)."""
    shown = []
    for key, value in filters.items():
        if key == REP:
            text = rep.display_name if rep is not None else _("(no owner)")
        elif key == REGION:
            text = value or _("(no region)")
        else:
            text = str(value)
        removable = not (forced and key == REP)
        shown.append(
            {
                "key": key,
                "label": dimension_label(key, metric),
                "text": text,
                "raw": "" if value is None else str(value),
                "remove": query_with(request, **{key: None, "page": None}) if removable else "",
            }
        )
    return shown


def _preset_links(request, current: str) -> list[dict]:
    return [
        {
            "key": key,
            "label": label,
            "url": "?" + query_with(request, period=key, start=None, end=None, page=None),
            "selected": key == current,
        }
        for key, label in PRESETS
    ]


def _dashboard_url(period, filters) -> str:
    """Back to the dashboard at the level of these filters."""
    dimensions = {key: value for key, value in filters.items() if key in (REGION, REP)}
    return f"{reverse('dashboard')}?{urlencode({**period.query(), **dimensions})}"
