"""A figure's drill-down list: the rows a registered metric (crm.metrics) counts, at
/reports/metrics/<key>/ (crm.views_metric_rows, URL name `metric_rows`) and in its CSV.

The contract (docs/dashboards.md): `?start=YYYY-MM-DD&end=YYYY-MM-DD` (crm.periods; the
current month to today by default) and the dimension filters `region=<text>` and
`rep=<membership id>` (empty: the rows without one) select exactly the rows the figure
counts (`crm.metrics.rows_of`), so the list's row count is the figure of a COUNT metric
and the sum of its `of` column the figure of a SUM. The figure is computed on the page
with `values_of`, on the same alias (`crm.metrics.reading`), in the same query as the
row count.

Who reads what: `may_read`. A rep reads their own rows only: their filter is forced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from typing import Any

import django_tables2 as tables
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, QueryDict
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_date, format_datetime
from crm.metrics import (
    COUNT,
    REGION,
    REP,
    Filters,
    Metric,
    column_names,
    get_metric,
    readable_by,
    reading,
    rows_of,
    values_of,
)
from crm.models import Membership, Role, Tenant
from crm.tables import EXPORT_CHUNK, detail_url_maker, spreadsheet_safe

PER_PAGE = 50
# The longest region value a filter takes (provinces are at most 30 characters).
REGION_MAX = 100
DIMENSIONS = (REGION, REP)
_ID = re.compile(r"[0-9]{1,18}")


class FilterError(ValueError):
    """A filter the list cannot apply: the page answers 400 with the message."""


# --- Who reads what ------------------------------------------------------------------------


def may_read(membership: Membership, metric: Metric) -> bool:
    """Who reads a figure's rows is the metric's own rule (`crm.metrics.readable_by`: its
    roles, never an amount for the roles that see none); reps read their own rows, so only
    of a metric broken down by rep."""
    if not readable_by(metric, membership.role):
        return False
    if membership.role == Role.REP:
        return metric.dimension(REP) is not None
    return True


def readable_metric(membership: Membership, key: str) -> Metric:
    """The metric `key` for `membership`: 404 unknown, 403 refused."""
    metric = get_metric(key)
    if metric is None:
        raise Http404("No such metric.")
    if not may_read(membership, metric):
        raise PermissionDenied(gettext("You may not read the rows of this figure."))
    return metric


# --- Filters -------------------------------------------------------------------------------


def requested_filters(
    query: QueryDict, *, tenant: Tenant, using: str
) -> tuple[Filters, Membership | None]:
    """The dimension filters of a query string and the rep it names: `region=<text>`,
    `rep=<membership id>` ("" for the rows without one). A rep that is not a member of
    `tenant` is 404; a region too long, FilterError."""
    filters: Filters = {}
    if REGION in query:
        region = query.get(REGION, "")
        if len(region) > REGION_MAX:
            raise FilterError(gettext("The region is too long."))
        filters[REGION] = region
    rep = None
    if REP in query:
        raw = query.get(REP, "")
        if raw:
            rep = member(raw, tenant=tenant, using=using)
            filters[REP] = rep.pk
        else:
            filters[REP] = ""
    return filters, rep


def member(raw: str | int, *, tenant: Tenant, using: str) -> Membership:
    """The tenant's member with id `raw`, or 404 (another tenant's id, or no such id)."""
    if not _ID.fullmatch(str(raw)):
        raise Http404("No such member.")
    found = (
        Membership.objects.using(using)
        .select_related("user")
        .filter(tenant=tenant, pk=int(raw))
        .first()
    )
    if found is None:
        raise Http404("No such member in this tenant.")
    return found


def check_filters(metric: Metric, filters: Filters) -> None:
    """FilterError for a filter on a dimension the metric does not have."""
    for key in filters:
        if metric.dimension(key) is None:
            raise FilterError(
                gettext("“%(metric)s” cannot be filtered by %(dimension)s.")
                % {"metric": metric.label, "dimension": dimension_label(key)}
            )


def dimension_label(key: str, metric: Metric | None = None) -> str:
    """A dimension's name: REGION's and REP's, else the one the metric gives it."""
    known = {REGION: gettext("region"), REP: gettext("rep")}
    if key in known:
        return known[key]
    dimension = metric.dimension(key) if metric is not None else None
    return str(dimension.label) if dimension is not None and dimension.label else key


# --- The figure and its rows ----------------------------------------------------------------


def figure_and_count(
    metric: Metric, *, tenant: Tenant, start: date, end: date, filters: Filters, using: str
) -> tuple[Any, int]:
    """The figure and the number of its rows, in one query (`values_of`: the metric and a
    COUNT twin share their family)."""
    if metric.aggregate == COUNT:
        figure = values_of(
            [metric], tenant=tenant, start=start, end=end, filters=filters, using=using
        )[metric.key]
        return figure, figure
    twin = replace(metric, key=f"{metric.key}#rows", aggregate=COUNT, of="")
    found = values_of(
        [metric, twin], tenant=tenant, start=start, end=end, filters=filters, using=using
    )
    return found[metric.key], found[twin.key]


def ordered(metric: Metric, queryset: QuerySet) -> QuerySet:
    """Newest first by the field that dates the rows, then by id: a stable order that the
    families' (tenant, date) indexes serve."""
    if metric.dated_by:
        return queryset.order_by(f"-{metric.dated_by}", "-pk")
    return queryset.order_by("-pk")


@dataclass(frozen=True)
class ShownColumn:
    path: str
    label: Any  # lazy
    field: Any  # the model field at the path, None for an annotation


def _field_at(model, path: str):
    *hops, last = path.split("__")
    try:
        for hop in hops:
            model = model._meta.get_field(hop).related_model
            if model is None:
                return None
        return model._meta.get_field(last)
    except FieldDoesNotExist:
        return None


def shown_columns(metric: Metric, model) -> list[ShownColumn]:
    """The list's columns: the metric's, then the field a SUM or MEDIAN reads when the
    columns do not show it (so the figure can be recomputed from the list)."""
    shown = [ShownColumn(c.path, c.label, _field_at(model, c.path)) for c in metric.columns]
    if metric.of and metric.of not in {c.path for c in shown}:
        field = _field_at(model, metric.of)
        label = capfirst(field.verbose_name) if field is not None else metric.of
        shown.append(ShownColumn(metric.of, label, field))
    return shown


def cell_text(value, field) -> str:
    """A value as the list and its CSV show it: choices by their label, times in the
    tenant's zone, yes or no."""
    if value is None or value == "":
        return ""
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    return str(value)


def link_maker(metric: Metric) -> Callable[[Any], str] | None:
    """The row's own page from its argument, reversing once per list where it can."""
    if metric.link is None:
        return None
    url_name = metric.link.url_name
    try:
        return detail_url_maker(url_name)
    except NoReverseMatch:
        return lambda arg: reverse(url_name, args=[arg])


@dataclass
class Rows:
    """A metric's rows for one period and set of filters, ready to page or export."""

    metric: Metric
    tenant: Tenant
    start: date
    end: date
    filters: Filters
    using: str

    @cached_property
    def queryset(self) -> QuerySet:
        # Once: a metric's condition may read the tenant's settings (a target).
        return ordered(
            self.metric,
            rows_of(
                self.metric,
                tenant=self.tenant,
                start=self.start,
                end=self.end,
                filters=self.filters,
                using=self.using,
            ),
        )

    @cached_property
    def columns(self) -> list[ShownColumn]:
        return shown_columns(self.metric, self.queryset.model)

    def values(self, queryset: QuerySet) -> QuerySet:
        return queryset.values_list(*column_names(self.metric))

    def records(self, ids: list) -> list[tuple]:
        """The rows with these ids, in the list's order (the page's second query)."""
        if not ids:
            return []
        return list(self.values(self.queryset.filter(pk__in=ids)))


# --- The page's table ------------------------------------------------------------------------


class DrillPaginator(Paginator):
    """A drill-down's pages. The count is known (the figure's query counted the rows: no
    COUNT of its own); a page is read ids first, as crm.tables.IdsFirstPaginator does: the
    page's ids in the list's order from the rows' own table (the family's (tenant, date)
    index), then those rows' columns. Two queries per page, whatever the rows."""

    def __init__(self, object_list, per_page, *, count: int, rows: Rows):
        super().__init__(object_list, per_page)
        self.count = count  # the cached_property's slot
        self.rows = rows

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.rows.queryset.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(self.rows.records(ids), number, self)


class RowsTable(tables.Table):
    """The rows, one column per shown column, the first linked to the row's own page."""

    class Meta:
        attrs = {"class": "table table-hover table-sm align-middle text-nowrap mb-0"}
        orderable = False

    def __init__(self, rows: Rows, **kwargs):
        self.drill = rows
        self.shown = rows.columns
        extra = [
            (f"c{i}", tables.Column(verbose_name=column.label, orderable=False))
            for i, column in enumerate(self.shown)
        ]
        super().__init__(data=[], extra_columns=extra, **kwargs)
        names = column_names(rows.metric)
        self.link = link_maker(rows.metric)
        self.link_index = names.index(rows.metric.link.arg_path) if self.link else None

    def body_rows(self) -> list[SafeString]:
        """The page's rows rendered in one pass (a template per cell costs more than the
        rows' query)."""
        out = []
        for record in self.page.object_list:
            cells = []
            for i, column in enumerate(self.shown):
                text = cell_text(record[i], column.field)
                if i == 0 and self.link is not None:
                    url = self.link(record[self.link_index])
                    cells.append(format_html('<td><a href="{}">{}</a></td>', url, text or "—"))
                else:
                    cells.append(format_html("<td>{}</td>", text))
            out.append(mark_safe('<tr data-testid="metric-row">' + "".join(cells) + "</tr>"))  # noqa: S308 (escaped cells)
        return out


def paged_table(rows: Rows, *, count: int, page) -> RowsTable:
    """The table at page `page` (a page out of range or not a number: the nearest one)."""
    table = RowsTable(rows)
    try:
        number = int(page or 1)
    except (TypeError, ValueError):
        number = 1
    pages = max(1, -(-count // PER_PAGE))
    table.paginate(
        paginator_class=DrillPaginator,
        per_page=PER_PAGE,
        page=min(max(number, 1), pages),
        count=count,
        rows=rows,
    )
    return table


# --- The CSV -----------------------------------------------------------------------------------


def csv_rows(metric: Metric, *, tenant: Tenant, start: date, end: date, filters: Filters):
    """The list as CSV rows, headings first; read when iterated, on the reports alias in
    `tenant`'s context (a streamed download reads after the view has returned)."""
    with reading(tenant) as alias:
        rows = Rows(metric, tenant, start, end, filters, alias)
        shown = rows.columns
        yield [spreadsheet_safe(str(column.label)) for column in shown]
        for record in rows.values(rows.queryset).iterator(chunk_size=EXPORT_CHUNK):
            yield [
                spreadsheet_safe(cell_text(record[i], column.field))
                for i, column in enumerate(shown)
            ]


def csv_name(metric: Metric, start: date, end: date) -> str:
    """The file's name without ".csv"."""
    return f"{metric.key.replace('.', '-')}-{start:%Y%m%d}-{end:%Y%m%d}"


def export_rows(membership: Membership, query: QueryDict) -> tuple[str, Iterator[list]]:
    """The background export of a long list (crm.exports): the same rows and columns as
    the streamed CSV of the same query string (`key` names the metric)."""
    from crm.periods import PeriodForm, local_today

    tenant = membership.tenant
    metric = get_metric(query.get("key", ""))
    if metric is None or not may_read(membership, metric):
        raise PermissionDenied(gettext("You may not read the rows of this figure."))
    form = PeriodForm(query, today=local_today(tenant))
    if not form.is_valid():
        raise ValueError(form.error_text())
    with reading(tenant) as alias:
        filters, _rep = requested_filters(query, tenant=tenant, using=alias)
    if membership.role == Role.REP:
        filters[REP] = membership.pk
    check_filters(metric, filters)
    period = form.chosen
    rows = csv_rows(metric, tenant=tenant, start=period.start, end=period.end, filters=filters)
    return csv_name(metric, period.start, period.end), rows


def register() -> None:
    """The drill-down lists as a background export source (from CrmConfig.ready)."""
    from crm.exports import ExportSource, register_source

    register_source(ExportSource(name="metric_rows", label=_("Rows of a figure"), rows=export_rows))
