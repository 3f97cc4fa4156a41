"""/reports/metrics/: the catalogue of every figure the product shows (crm.metrics), by
section: its name, what it counts, how (a count, a sum, a median), its unit, the
breakdowns it supports, and this month's figure linked to the list of its rows; rates with
their two numbers, the share and the target.

Who sees what: every member opens it, and reads the metrics `crm.metrics.readable_by`
their role (service agents: the service desk's figures, never an amount). A rep reads the
figures of their own rows (the metrics broken down by rep, filtered to them); a metric
without a rep has no figure for a rep. The figures are read on the reports alias, one
query per family of metrics (`values_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from crm import metrics
from crm.metrics import COUNT, REGION, REP, SUM, Metric, Rate
from crm.models import Membership, Role

DIMENSION_LABELS = {REGION: gettext_lazy("region"), REP: gettext_lazy("rep")}
UNIT_LABELS = {
    "": gettext_lazy("count"),
    "minutes": gettext_lazy("minutes"),
    "days": gettext_lazy("days"),
    "amount": gettext_lazy("amount (CNY)"),
}


@dataclass
class Figure:
    """A number shown, as text, and the link to the rows it is made of."""

    value: Any
    text: str
    url: str


@dataclass
class MetricEntry:
    metric: Metric
    how: str  # "count of the rows", "sum of Amount", "median of …"
    unit: str
    dimensions: list[str]
    figure: Figure | None  # None: no figure for this reader


@dataclass
class RateEntry:
    rate: Rate
    numerator: MetricEntry
    denominator: MetricEntry
    share: float | None
    share_text: str
    target_text: str
    meets: bool | None

    @property
    def parts(self) -> list[tuple[str, MetricEntry]]:
        return [("numerator", self.numerator), ("denominator", self.denominator)]


@dataclass
class Section:
    title: str
    metrics: list[MetricEntry] = field(default_factory=list)
    rates: list[RateEntry] = field(default_factory=list)


def _number(value, decimals: int) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.{decimals}f}"


def figure_text(metric: Metric, value) -> str:
    """A figure as the catalogue prints it: 1,234 · ¥480,000 · 42.5 min · 63 days."""
    if value is None:
        return "—"
    if metric.unit == "amount":
        amount = Decimal(value)
        if amount == amount.to_integral_value():
            return f"¥{amount:,.0f}"
        return f"¥{amount:,.2f}"
    text = _number(value, 1)
    if metric.unit == "minutes":
        return _("%(n)s min") % {"n": text}
    if metric.unit == "days":
        return _("%(n)s days") % {"n": text}
    return text


def share_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _field_label(metric: Metric, tenant, start: date, end: date) -> str:
    """What `of` is, for people: its column's heading, else its field's name."""
    for column in metric.columns:
        if column.path == metric.of:
            return str(column.label)
    model = metric.rows(tenant, start, end).model  # a lazy queryset: no query
    try:
        *hops, last = metric.of.split("__")
        for hop in hops:
            model = model._meta.get_field(hop).related_model
        return str(model._meta.get_field(last).verbose_name)
    except Exception:  # an annotation the rows make: its path says what it is
        return metric.of


def how(metric: Metric, tenant, start: date, end: date) -> str:
    if metric.aggregate == COUNT:
        return _("count of the rows")
    name = _field_label(metric, tenant, start, end)
    if metric.aggregate == SUM:
        return _("sum of %(field)s") % {"field": name}
    return _("median of %(field)s") % {"field": name}


def _rep_filter(membership: Membership) -> dict | None:
    return {REP: membership.pk} if membership.role == Role.REP else None


def _figured(metric: Metric, membership: Membership) -> bool:
    """Whether the reader gets a figure: a rep only where the metric is broken down by rep."""
    return membership.role != Role.REP or metric.dimension(REP) is not None


def catalogue(membership: Membership, start: date, end: date) -> list[Section]:
    """The sections the member reads, with the figures of [start, end]. Inside the
    member's tenant context (a request's)."""
    tenant, role = membership.tenant, membership.role
    shown = [m for m in metrics.metrics() if metrics.readable_by(m, role)]
    rates = [r for r in metrics.rates() if metrics.rate_readable_by(r, role)]
    figured = [m for m in shown if _figured(m, membership)]
    filters = _rep_filter(membership)
    with metrics.reading(tenant) as alias:
        values = metrics.values_of(
            figured, tenant=tenant, start=start, end=end, filters=filters, using=alias
        )

    def entry(metric: Metric) -> MetricEntry:
        figure = None
        if metric.key in values:
            value = values[metric.key]
            url = metrics.drill_url(metric.key, start, end, filters)
            figure = Figure(value, figure_text(metric, value), url)
        dimensions = [str(d.label or DIMENSION_LABELS.get(d.key, d.key)) for d in metric.dimensions]
        unit = str(UNIT_LABELS.get(metric.unit, metric.unit))
        return MetricEntry(metric, how(metric, tenant, start, end), unit, dimensions, figure)

    sections: dict[str, Section] = {}

    def section(title) -> Section:
        title = str(title) or _("Other")
        return sections.setdefault(title, Section(title))

    entries = {}
    for metric in shown:
        entries[metric.key] = entry(metric)
        section(metric.section).metrics.append(entries[metric.key])
    for rate in rates:
        numerator, denominator = entries[rate.numerator], entries[rate.denominator]
        share = None
        if numerator.figure is not None and denominator.figure is not None:
            share = rate.share(numerator.figure.value, denominator.figure.value)
        target = ""
        if rate.target is not None:
            sign = "≥" if rate.higher_is_better else "≤"
            target = f"{sign} {rate.target * 100:.0f} %"
        title = rate.section or metrics.get_metric(rate.numerator).section
        section(title).rates.append(
            RateEntry(
                rate, numerator, denominator, share, share_text(share), target, rate.meets(share)
            )
        )
    return list(sections.values())


@require_GET
def metric_catalogue(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    if membership is None:
        raise PermissionDenied(_("The metric catalogue is for the members of a tenant."))
    end = timezone.localdate(timezone=request.tenant.tzinfo)
    start = end.replace(day=1)
    context = {
        "sections": catalogue(membership, start, end),
        "start": start,
        "end": end,
        "own_rows_only": membership.role == Role.REP,
    }
    return TemplateResponse(request, "crm/metric_catalogue.html", context)
