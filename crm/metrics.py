"""Metric definitions: every figure a dashboard shows, defined once, with the rows behind it.

A registry, as crm.navigation is for the menu: each app defines the figures of its own
data and registers them in its AppConfig.ready(); the kernel never imports the apps.

    from crm.metrics import COUNT, Column, Metric, register_metric

    register_metric(
        Metric(
            key="leads.delivered",
            label=_("Delivered"),
            definition=_("Every lead created in the range, revisits included."),
            rows=delivered_rows,  # (tenant, start, end) -> QuerySet
            aggregate=COUNT,
            columns=(Column("created_at", _("created at")), Column("channel__name", …)),
        )
    )

- `label` and `definition` are lazy translations: the figure's name and one line saying
  exactly what it counts, shown next to it.
- `rows(tenant, start, end)` is the queryset of the rows the figure is made of for
  `tenant` over its local days [start, end] (`period_bounds`: the tenant's time zone). It
  runs inside `tenant_context(tenant)`, a request's or a task's.
- `aggregate`: COUNT counts the rows; SUM adds up the field `sum_of` over them (0 when
  there are none).
- `columns`: the drill-down table of the rows, as field paths (`channel__name`) with
  their headings.

`value()` computes a figure from its rows and `drill_down()` lists those rows, so a figure
and the table behind it cannot disagree. No page reads the registry yet: the dashboards
build on it. The leads app's metrics are in leads/reports/metrics.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone

from crm.models import Tenant

COUNT = "count"
SUM = "sum"


@dataclass(frozen=True)
class Column:
    path: str  # a field path on the rows, e.g. "channel__name"
    label: str  # lazy


@dataclass(frozen=True)
class Metric:
    key: str  # "<app>.<name>", e.g. "leads.delivered"
    label: str  # lazy
    definition: str  # lazy, one line
    rows: Callable[[Tenant, date, date], QuerySet]
    aggregate: str = COUNT  # COUNT or SUM
    sum_of: str = ""  # the field SUM adds up
    columns: tuple[Column, ...] = ()

    def __post_init__(self) -> None:
        if self.aggregate not in (COUNT, SUM):
            raise ValueError(f"metric {self.key!r}: aggregate is {COUNT!r} or {SUM!r}")
        if (self.aggregate == SUM) != bool(self.sum_of):
            raise ValueError(f"metric {self.key!r}: a field for SUM, and only for SUM")


_registry: dict[str, Metric] = {}


def register_metric(metric: Metric) -> None:
    """Make a metric known (from an AppConfig.ready()); registering a key again replaces."""
    _registry[metric.key] = metric


def metrics() -> list[Metric]:
    return sorted(_registry.values(), key=lambda m: m.key)


def get_metric(key: str) -> Metric | None:
    return _registry.get(key)


def period_bounds(tenant: Tenant, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the tenant's time zone, as aware
    datetimes: the instants of the local days [start, end]."""
    tz = tenant.tzinfo
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


def value(metric: Metric, *, tenant: Tenant, start: date, end: date) -> int:
    """The figure: the rows counted, or `sum_of` added up over them."""
    rows = metric.rows(tenant, start, end)
    if metric.aggregate == COUNT:
        return rows.count()
    return rows.order_by().aggregate(total=Sum(metric.sum_of))["total"] or 0


def drill_down(metric: Metric, *, tenant: Tenant, start: date, end: date) -> list[tuple]:
    """The rows behind the figure, as the values of its columns (and of `sum_of` last,
    for a SUM whose columns do not show it)."""
    names = [column.path for column in metric.columns]
    if metric.sum_of and metric.sum_of not in names:
        names.append(metric.sum_of)
    return list(metric.rows(tenant, start, end).values_list(*names))
