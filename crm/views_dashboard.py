"""The manager dashboard (F39) at /dashboard/, the home of managers and admins: the tiles
(crm.dashboard) for a period beside the previous one, then region → rep → the rows, every
number a link to the rows it counts (crm.views_metric_rows), with one chart and a CSV for
every table (`?_export=tiles|regions|reps`).

    /dashboard/?period=month                       every region
    /dashboard/?start=…&end=…&region=浙江           one region, its reps
    /dashboard/?start=…&end=…&region=浙江&rep=12    one rep: the figures open the rep's rows
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm import dashboard, navigation, status
from crm.metric_rows import FilterError, requested_filters
from crm.metrics import REGION, REP, reading
from crm.periods import PRESETS, PeriodForm, local_today
from crm.roles import DASHBOARD
from crm.tables import spreadsheet_safe, streamed_csv

TEMPLATE = "crm/dashboard.html"
EXPORTS = ("tiles", "regions", "reps")


def _plain(message: str, status_code: int = 400) -> HttpResponse:
    return HttpResponse(message, status=status_code, content_type="text/plain; charset=utf-8")


def _url(**query) -> str:
    params = {name: value for name, value in query.items() if value is not None}
    return f"{reverse('dashboard')}?{urlencode(params)}"


@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    if membership is None or membership.role not in DASHBOARD:
        raise PermissionDenied(_("The dashboard is for managers and admins."))
    tenant = request.tenant
    export = request.GET.get("_export")
    if export and export not in EXPORTS:
        return _plain(_("Unknown table: choose tiles, regions or reps."))
    form = PeriodForm(request.GET, today=local_today(tenant))
    if not form.is_valid():
        if export:
            return _plain(form.error_text())
        context = {"form": form, "presets": _preset_links({}, "")}
        return TemplateResponse(request, TEMPLATE, context, status=400)
    period = form.chosen
    with reading(tenant) as alias:
        try:
            filters, rep = requested_filters(request.GET, tenant=tenant, using=alias)
        except FilterError as exc:
            return _plain(str(exc))
        shown = dashboard.shown_tiles(filters)
        scope = {"tenant": tenant, "period": period, "filters": filters, "using": alias}
        level = REP if REP in filters else REGION if REGION in filters else ""
        table = None
        if export == "regions" or (not export and not level):
            table = dashboard.breakdown(
                shown,
                REGION,
                labels=dashboard.region_names,
                empty_label=_("(no region)"),
                **scope,
            )
        elif export == "reps" or (not export and level == REGION):
            table = dashboard.breakdown(
                shown,
                REP,
                labels=dashboard.rep_names(tenant, alias),
                empty_label=_("(no owner)"),
                **scope,
            )
        if export in ("regions", "reps"):
            return _table_csv(request, table, period)
        figures = dashboard.tile_figures(shown, **scope)
        if export == "tiles":
            return _tiles_csv(request, figures, period)
        chart = dashboard.chart(shown, **scope)
    _link_rows(table, period, filters)
    context = {
        "form": form,
        "period": period,
        "presets": _preset_links(filters, period.preset),
        "figures": figures,
        "nothing": all(not f.current.value and not f.previous.value for f in figures),
        "table": table,
        "level": level,
        "breadcrumb": _breadcrumb(period, filters, rep),
        "filters": filters,
        "rep": rep,
        "chart": chart,
        "export_query": {name: _export_query(request, name) for name in EXPORTS},
        # What the home page offered besides the menu: the apps' cards, the other pages.
        "more_items": [
            item
            for item in navigation.items_for(request)
            if not item.in_navbar and item.key not in ("home", "password")
        ],
        "cards": [
            render_to_string(template, card_context, request)
            for template, card_context in navigation.home_cards_for(request)
        ],
    }
    context["status"] = status.for_page(request)
    return TemplateResponse(request, TEMPLATE, context)


def _preset_links(filters, current: str) -> list[dict]:
    return [
        {"key": key, "label": label, "url": _url(period=key, **filters), "selected": key == current}
        for key, label in PRESETS
    ]


def _breadcrumb(period, filters, rep) -> list[tuple[str, str]]:
    """(label, link) from every region down to the rep shown; the last is the page."""
    dates = period.query()
    crumbs = [(_("All regions"), _url(**dates))]
    if REGION in filters:
        region = filters[REGION]
        crumbs.append((region or _("(no region)"), _url(**dates, region=region)))
    if REP in filters:
        name = rep.display_name if rep is not None else _("(no owner)")
        crumbs.append((name, _url(**dates, **filters)))
    return crumbs


def _link_rows(table, period, filters) -> None:
    """Each breakdown row's link one level down: a region's reps, a rep's figures."""
    for row in table.rows if table is not None else ():
        row.link = _url(**period.query(), **{**filters, table.dimension: row.value})


def _export_query(request: HttpRequest, name: str) -> str:
    params = request.GET.copy()
    params["_export"] = name
    return params.urlencode()


def _table_csv(request: HttpRequest, table, period) -> HttpResponse:
    heading = _("Region") if table.dimension == REGION else _("Rep")
    rows = [[heading, *(str(metric.label) for metric in table.columns)]]
    for row in table.rows:
        rows.append([spreadsheet_safe(row.label), *(cell.value for cell in row.cells)])
    name = "regions" if table.dimension == REGION else "reps"
    filename = f"dashboard-{name}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    return streamed_csv(rows, filename, tenant=request.tenant)


def _tiles_csv(request: HttpRequest, figures, period) -> HttpResponse:
    """The tiles as numbers (a rate as a share between 0 and 1), with the change's text."""
    rows = [[_("Figure"), _("This period"), _("Previous period"), _("Change")]]
    for figure in figures:
        current, previous = figure.current.value, figure.previous.value
        if figure.rate is not None:
            current = "" if current is None else f"{current:.4f}"
            previous = "" if previous is None else f"{previous:.4f}"
        rows.append([str(figure.label), current, previous, figure.delta])
    filename = f"dashboard-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    return streamed_csv(rows, filename, tenant=request.tenant)
