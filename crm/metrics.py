"""Metric definitions: every figure a dashboard shows, defined once, with the rows behind it.

A registry, as crm.navigation is for the menu: each app defines the figures of its own
data and registers them in its AppConfig.ready(); the kernel never imports the apps.

    from crm.metrics import COUNT, Column, Dimension, Metric, register_metric

    register_metric(
        Metric(
            key="leads.delivered",
            label=_("Delivered"),
            definition=_("Every lead created in the range, revisits included."),
            rows=created_in,  # (tenant, start, end) -> QuerySet, shared by a family
            where=Q(...),  # this figure's condition on those rows (or tenant -> Q), optional
            aggregate=COUNT,
            columns=(Column("created_at", _("created at")), Column("channel__name", …)),
            dimensions=(Dimension(REGION, "province"), Dimension(REP, "owner")),
            dated_by="created_at",
            link=RowLink("leads:detail", "public_id"),
            section=_("Leads"),
        )
    )

- `label` and `definition` are lazy translations: the figure's name and one line saying
  exactly what it counts, shown next to it.
- `rows(tenant, start, end)` is the queryset the figure's family counts for `tenant` over
  its local days [start, end] (`period_bounds`: the tenant's time zone), and `where` the
  figure's own condition on them; `rows_of()` is the two together, and is what the figure
  and its drill-down both read. Metrics that share the same `rows` function are computed
  in one query (`values_of`: one aggregate per metric, each with its FILTER). It runs
  inside `tenant_context(tenant)`, a request's or a task's.
- `aggregate`: COUNT counts the rows; SUM adds up the field `of` over them (0 when there
  are none); MEDIAN is the median of `of` (None when there are none). `of` may be an
  annotation the `rows` queryset makes (minutes between two times …).
- `columns`: the drill-down table of the rows, as field paths (`channel__name`) with
  their headings; `link` opens each row's own page (a URL name and the path of its one
  argument), where the rows have one.
- `dimensions`: the breakdowns the figure supports, by kind (REGION, REP, or an app's own
  key) and the field path that holds it; REP paths point at a Membership. The dashboards
  break a figure down (`values_by`) and filter its rows (`rows_of(..., filters=)`) by them;
  the value "" stands for the rows without one (NULL, or "" on a text path).
- `dated_by`: the time (or date) field that puts a row in the period, for daily series
  (a time is counted on its local day in the tenant's time zone).
- `unit`: "" (a count), "minutes", "days" or "amount": how a dashboard prints the figure.
- `roles`: who may read the figure and its rows (a crm.roles set; by default the sales
  side, SALES). `readable_by(metric, role)` says it, and never lets a role of
  AMOUNT_HIDDEN (service agents) read an amount: an app whose figures service agents
  read (the service desk's) says so with `roles=EVERYONE`.

Rates (`Rate`, `register_rate`) are two metrics, a numerator whose rows are among the
denominator's: a dashboard shows the share and links both numbers to their rows. A rate
is readable by whoever reads both its metrics. A rate
may name a third, `act_on`: the denominator's rows the numerator lacks (the leads not
followed up, the steps done late …), what its `advice` links to.

`/reports/metrics/` (crm.metric_catalogue) lists every definition with this month's
figure; every night crm.metric_checks recounts every figure from its drill-down rows
(`recount`) for every tenant and alerts the platform admin when one does not add up
(docs/metrics.md).

Reports read the `reports` database alias (`reports_alias()`, docs/metrics.md): the
primary unless REPORTS_DATABASE_URL names a replica. `reading(tenant)` opens the tenant's
context on it; a figure and its drill-down always read the same alias. `reading_all(tenant)`
also routes every ORM read inside to it (`ReportsRouter`), for reports written with plain
managers (the lead-quality report, the background exports); writes never go there.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import Tenant
from crm.roles import AMOUNT_HIDDEN, SALES

COUNT = "count"
SUM = "sum"
MEDIAN = "median"
AGGREGATES = (COUNT, SUM, MEDIAN)

# The kernel's dimension kinds: every app that can say where a row is and whose it is
# uses these keys, so a dashboard can break all of them down the same way.
REGION = "region"  # a province (the lead's, the customer's)
REP = "rep"  # a Membership: the owner

REPORTS = "reports"

Filters = dict[str, Any]  # dimension key -> value ("" for rows without one)


class Median(Aggregate):
    """PostgreSQL's exact median, `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)`."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
    allow_distinct = False


@dataclass(frozen=True)
class Column:
    path: str  # a field path on the rows, e.g. "channel__name"
    label: str  # lazy


@dataclass(frozen=True)
class Dimension:
    key: str  # REGION, REP, or an app's own kind
    path: str  # the field path on the rows that holds it ("province", "customer__owner")
    label: str = ""  # an app's own kind's name (lazy text); REGION's and REP's are known


@dataclass(frozen=True)
class RowLink:
    url_name: str  # "leads:detail"
    arg_path: str  # the path of its one argument on the rows, "public_id"


Where = Q | Callable[[Tenant], Q] | None


@dataclass(frozen=True)
class Metric:
    key: str  # "<app>.<name>", e.g. "leads.delivered"
    label: str  # lazy
    definition: str  # lazy, one line
    rows: Callable[[Tenant, date, date], QuerySet]
    aggregate: str = COUNT  # COUNT, SUM or MEDIAN
    of: str = ""  # the field SUM adds up / MEDIAN takes the median of
    where: Where = None
    columns: tuple[Column, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    dated_by: str = ""
    link: RowLink | None = None
    unit: str = ""  # "", "minutes", "days", "amount"
    section: Any = ""  # lazy: the heading it is listed under
    group: str = ""  # a machine key pages select by ("process", …)
    roles: frozenset[str] = SALES  # who reads it (a crm.roles set), see readable_by()

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"metric {self.key!r}: aggregate is one of {AGGREGATES}")
        if (self.aggregate == COUNT) == bool(self.of):
            raise ValueError(f"metric {self.key!r}: a field for SUM or MEDIAN, and only for them")

    def condition(self, tenant: Tenant) -> Q | None:
        return self.where(tenant) if callable(self.where) else self.where

    def dimension(self, key: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.key == key), None)


@dataclass(frozen=True)
class Rate:
    """A share: `numerator`'s rows are among `denominator`'s (both COUNT metrics)."""

    key: str
    label: str  # lazy
    definition: str  # lazy
    numerator: str  # a metric key
    denominator: str  # a metric key
    target: float | None = None  # 0–1, the share to reach (or stay under, see below)
    higher_is_better: bool = True
    section: Any = ""
    group: str = ""  # a machine key pages select by ("process", …)
    advice: Any = ""  # lazy: what to do when the share misses its target
    # A metric key (optional): the denominator's rows the numerator lacks, the ones to
    # work on; a diagnosis links its advice to them.
    act_on: str = ""

    def share(self, numerator, denominator) -> float | None:
        return numerator / denominator if denominator else None

    def meets(self, share: float | None) -> bool | None:
        """Whether `share` reaches the target (None without a target or a share)."""
        if share is None or self.target is None:
            return None
        return share >= self.target if self.higher_is_better else share <= self.target


_registry: dict[str, Metric] = {}
_rates: dict[str, Rate] = {}


def register_metric(metric: Metric) -> None:
    """Make a metric known (from an AppConfig.ready()); registering a key again replaces."""
    _registry[metric.key] = metric


def register_rate(rate: Rate) -> None:
    _rates[rate.key] = rate


def metrics() -> list[Metric]:
    return sorted(_registry.values(), key=lambda m: m.key)


def get_metric(key: str) -> Metric | None:
    return _registry.get(key)


def rates() -> list[Rate]:
    return sorted(_rates.values(), key=lambda r: r.key)


def get_rate(key: str) -> Rate | None:
    return _rates.get(key)


def readable_by(metric: Metric, role: str | None) -> bool:
    """Whether a member with `role` may read the figure and its rows: a role among the
    metric's `roles`, and never an amount for the roles that see none (AMOUNT_HIDDEN)."""
    if role not in metric.roles:
        return False
    return not (metric.unit == "amount" and role in AMOUNT_HIDDEN)


def rate_readable_by(rate: Rate, role: str | None) -> bool:
    """Whether a member with `role` reads both of the rate's metrics (and so the rate)."""
    found = [get_metric(rate.numerator), get_metric(rate.denominator)]
    return all(m is not None and readable_by(m, role) for m in found)


# --- The reports alias ------------------------------------------------------------------


def reports_alias() -> str:
    """The database reports and dashboards read: `reports` when configured (a replica,
    REPORTS_DATABASE_URL), else the primary."""
    return REPORTS if REPORTS in settings.DATABASES else "default"


@contextmanager
def reading(tenant: Tenant) -> Iterator[str]:
    """The reports alias, with `tenant`'s context open on it (RLS reads a transaction-local
    setting, so a second connection needs its own). Yields the alias to pass to `using()`."""
    from crm.tenancy import tenant_context

    alias = reports_alias()
    if alias == "default":
        yield alias
        return
    with tenant_context(tenant, using=alias):
        yield alias


# The alias ORM reads are routed to inside reading_all(), or None.
_routed: ContextVar[str | None] = ContextVar("crm_reports_routed", default=None)


@contextmanager
def reading_all(tenant: Tenant) -> Iterator[str]:
    """`reading(tenant)`, with every ORM read inside routed to its alias (ReportsRouter):
    for a report or an export that reads through the models' managers, with no `using=`.
    Raw SQL takes the alias from `django.db.router.db_for_read(model)`. Writes inside
    still go to the primary. Yields the alias."""
    with reading(tenant) as alias:
        token = _routed.set(None if alias == "default" else alias)
        try:
            yield alias
        finally:
            _routed.reset(token)


def routed_alias() -> str | None:
    """The alias reads are routed to here (inside `reading_all()` on a replica), or None."""
    return _routed.get()


# A list opened from a report's figure reads where the figure was read: with a replica
# configured, the figure's link carries ?read=reports and the list's view is wrapped in
# `read_as_reports` (the lead-quality report's figures open the lead list).
READ_PARAM, READ_REPORTS = "read", "reports"


def read_as_reports_query() -> dict[str, str]:
    """The query parameter a report's link to a list adds (none without a replica)."""
    return {READ_PARAM: READ_REPORTS} if reports_alias() != "default" else {}


def read_as_reports(view):
    """A list view that a report's figures link to: a request with ?read=reports reads
    inside `reading_all(request.tenant)`, its page rendered there too (its queries run
    while the template renders), so the list shows the rows the figure counted, replica
    lag and all. Other requests read the primary, as before."""
    import functools

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        tenant = getattr(request, "tenant", None)
        if request.GET.get(READ_PARAM) != READ_REPORTS or tenant is None:
            return view(request, *args, **kwargs)
        with reading_all(tenant):
            response = view(request, *args, **kwargs)
            if callable(getattr(response, "render", None)) and not response.is_rendered:
                response.render()
            return response

    return wrapped


class ReportsRouter:
    """Reads inside `reading_all()` go to the reports alias; writes never do. A save or a
    query's write inside it goes to the primary, and so does the save of an object that
    was read on `reports`. A query that names the alias itself (`.using("reports")`)
    passes no router: the replica refuses its write (a standby is read-only, and the
    alias's sessions are read-only on any server: crm/settings.py)."""

    def db_for_read(self, model, **hints):
        return _routed.get()

    def db_for_write(self, model, **hints):
        instance = hints.get("instance")
        if _routed.get() is not None or (instance is not None and instance._state.db == REPORTS):
            return "default"
        return None


# --- Links ------------------------------------------------------------------------------
# The drill-down list of a figure's rows is the kernel's page `metric_rows`
# (/reports/metrics/<key>/?start=…&end=…&region=…&rep=…), with its CSV (`&_export=csv`).


def drill_url(key: str, start: date, end: date, filters: Filters | None = None) -> str:
    """The link from a figure to the list of its rows, filtered as the figure is."""
    from django.urls import reverse
    from django.utils.http import urlencode

    query = {"start": start.isoformat(), "end": end.isoformat()}
    for name, wanted in (filters or {}).items():
        query[name] = "" if wanted is None else str(wanted)
    return f"{reverse('metric_rows', args=[key])}?{urlencode(query)}"


# --- Periods ----------------------------------------------------------------------------


def period_bounds(tenant: Tenant, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the tenant's time zone, as aware
    datetimes: the instants of the local days [start, end]."""
    tz = tenant.tzinfo
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period a figure is compared with. A period of calendar months compares with the
    same days of the months before it, as managers read 环比: a month (or the month to date,
    1–3 December) with the month before (1–3 November; 1–31 March with 1–28 February), a
    quarter (or the quarter to date) with the quarter before. Any other period (a week, the
    last 30 days, custom dates) with the period of the same length that ends the day before
    `start`."""
    if start.day == 1:
        if (start.year, start.month) == (end.year, end.month):
            return _months_back(start, 1), _months_back(end, 1)
        quarter_end = _months_back(start, -3) - timedelta(days=1)
        if start.month % 3 == 1 and end <= quarter_end:
            return _months_back(start, 3), _months_back(end, 3)
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def _months_back(day: date, months: int) -> date:
    """`day` moved `months` calendar months back (forward when negative), on the last day
    of that month when it is shorter (31 March → 28 February)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


# --- Rows and figures -------------------------------------------------------------------


def _field_at(model, path: str):
    """The model field at `path` ("customer__owner"), or None (an annotation's name)."""
    *hops, last = path.split("__")
    try:
        for hop in hops:
            model = model._meta.get_field(hop).related_model
        return model._meta.get_field(last)
    except (FieldDoesNotExist, AttributeError):
        return None


def _without(qs: QuerySet, path: str) -> QuerySet:
    """The rows without a value at `path`: NULL, or "" where the path holds text (a
    relation, a Membership for REP, is only ever NULL)."""
    empty = Q(**{f"{path}__isnull": True})
    field = _field_at(qs.model, path)
    if field is None or not field.is_relation:
        empty |= Q(**{path: ""})
    return qs.filter(empty)


def _filtered(metric: Metric, qs: QuerySet, filters: Filters | None) -> QuerySet:
    for key, wanted in (filters or {}).items():
        dimension = metric.dimension(key)
        if dimension is None:
            raise ValueError(f"metric {metric.key!r} has no dimension {key!r}")
        if wanted in ("", None):
            qs = _without(qs, dimension.path)
            continue
        qs = qs.filter(**{dimension.path: wanted})
    return qs


def _is_text(model, path: str) -> bool:
    """Whether the field at `path` holds text, where "" says "none" as NULL does (a
    relation, a REP's Membership, has only NULL; so has an annotation)."""
    *hops, last = path.split("__")
    try:
        for hop in hops:
            model = model._meta.get_field(hop).related_model
        field = model._meta.get_field(last)
    except FieldDoesNotExist:
        return False
    return not field.is_relation and isinstance(field, models.CharField | models.TextField)


def supports(metric: Metric, filters: Filters | None) -> bool:
    """Whether the metric can be filtered by every dimension in `filters`."""
    return all(metric.dimension(key) is not None for key in (filters or {}))


def rows_of(
    metric: Metric,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> QuerySet:
    """The rows the figure is made of: its family's rows, its condition, the filters."""
    qs = metric.rows(tenant, start, end)
    condition = metric.condition(tenant)
    if condition is not None:
        qs = qs.filter(condition)
    qs = _filtered(metric, qs, filters)
    return qs.using(using) if using else qs


def _aggregate(metric: Metric, condition: Q | None):
    if metric.aggregate == COUNT:
        return Count("pk", filter=condition)
    if metric.aggregate == SUM:
        return Sum(metric.of, filter=condition)
    return Median(metric.of, filter=condition)


def _final(metric: Metric, raw):
    if metric.aggregate == SUM:
        return raw or 0
    if metric.aggregate == COUNT:
        return raw or 0
    return raw  # MEDIAN: None with no rows


def _families(found: Iterable[Metric]) -> list[list[Metric]]:
    """Metrics grouped by their `rows` function, in the order first met."""
    groups: dict[Any, list[Metric]] = {}
    for metric in found:
        groups.setdefault(metric.rows, []).append(metric)
    return list(groups.values())


def _family_query(
    family: list[Metric], tenant: Tenant, start: date, end: date, filters, using
) -> QuerySet:
    base = family[0].rows(tenant, start, end)
    base = _filtered(family[0], base, filters)
    return base.using(using) if using else base


def _annotations(family: list[Metric], tenant: Tenant) -> dict[str, Any]:
    return {
        f"m{i}": _aggregate(metric, metric.condition(tenant)) for i, metric in enumerate(family)
    }


def values_of(
    found: Iterable[Metric],
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> dict[str, Any]:
    """Each metric's figure, one query per family of metrics sharing their rows."""
    result: dict[str, Any] = {}
    for family in _families(found):
        qs = _family_query(family, tenant, start, end, filters, using)
        if len({id(metric.where) for metric in family}) == 1:
            # One condition for the whole family (a single figure, or a figure and its
            # row count): in the WHERE clause, where an index can serve it, rather than
            # in each aggregate's FILTER over every row of the family.
            condition = family[0].condition(tenant)
            if condition is not None:
                qs = qs.filter(condition)
            raw = qs.order_by().aggregate(
                **{f"m{i}": _aggregate(metric, None) for i, metric in enumerate(family)}
            )
        else:
            raw = qs.order_by().aggregate(**_annotations(family, tenant))
        for i, metric in enumerate(family):
            result[metric.key] = _final(metric, raw[f"m{i}"])
    return result


def values_by(
    found: Iterable[Metric],
    dimension: str,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> dict[Any, dict[str, Any]]:
    """Each metric's figure per value of `dimension` ({value: {metric key: figure}}); the
    metrics without that dimension are left out. Values are the path's raw values (a
    Membership id for REP; "" and None both become "")."""
    result: dict[Any, dict[str, Any]] = {}
    having = [m for m in found if m.dimension(dimension) is not None]
    for family in _families(having):
        path = family[0].dimension(dimension).path
        qs = _family_query(family, tenant, start, end, filters, using)
        grouped = qs.order_by().values(path).annotate(**_annotations(family, tenant))
        for row in grouped:
            key = row[path] if row[path] is not None else ""
            bucket = result.setdefault(key, {})
            for i, metric in enumerate(family):
                value = _final(metric, row[f"m{i}"])
                if metric.key in bucket and metric.aggregate != MEDIAN:
                    # "" and None fall in one bucket: a count or a sum adds them up. (A
                    # text path holds one of the two, in practice, so a median is kept.)
                    value += bucket[metric.key]
                bucket[metric.key] = value
    return result


def totals_and_by(
    found: Iterable[Metric],
    dimension: str,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """`values_of` and `values_by` at once: (the figures, the figures per value of
    `dimension`). Every row falls in one group (those without a value in ""), so a COUNT's
    or a SUM's figure is its groups' added up; only the medians, and the metrics without
    the dimension, are read by `values_of`. One grouped query per family, and one more per
    family with a median, instead of two per family."""
    found = list(found)
    by = values_by(
        found, dimension, tenant=tenant, start=start, end=end, filters=filters, using=using
    )
    added = [m for m in found if m.dimension(dimension) is not None and m.aggregate != MEDIAN]
    totals: dict[str, Any] = {
        metric.key: sum((figures.get(metric.key, 0) for figures in by.values()), 0)
        for metric in added
    }
    rest = [m for m in found if m.key not in totals]
    if rest:
        totals |= values_of(rest, tenant=tenant, start=start, end=end, filters=filters, using=using)
    return totals, by


def _is_date(model, path: str) -> bool:
    """Whether the field at `path` holds dates (not times)."""
    *hops, last = path.split("__")
    for hop in hops:
        model = model._meta.get_field(hop).related_model
    field = model._meta.get_field(last)
    return isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField)


def series(
    metric: Metric,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> list[tuple[date, Any]]:
    """The figure day by day over [start, end] (the tenant's local days, by `dated_by`),
    every day listed (0 or None on a day without rows)."""
    if not metric.dated_by:
        raise ValueError(f"metric {metric.key!r} has no dated_by")
    qs = rows_of(metric, tenant=tenant, start=start, end=end, filters=filters, using=using)
    if _is_date(qs.model, metric.dated_by):
        day = F(metric.dated_by)
    else:
        day = TruncDate(metric.dated_by, tzinfo=tenant.tzinfo)
    # Annotated under names no model field has (a `dated_by` may be a field named "day").
    found = {
        row["series_day"]: _final(metric, row["series_value"])
        for row in qs.order_by()
        .annotate(series_day=day)
        .values("series_day")
        .annotate(series_value=_aggregate(metric, None))
    }
    days = (end - start).days + 1
    empty = None if metric.aggregate == MEDIAN else 0
    return [
        (start + timedelta(days=i), found.get(start + timedelta(days=i), empty))
        for i in range(days)
    ]


def value(
    metric: Metric,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
):
    """The figure: the rows counted, `of` added up over them, or its median."""
    return values_of([metric], tenant=tenant, start=start, end=end, filters=filters, using=using)[
        metric.key
    ]


def column_names(metric: Metric) -> list[str]:
    """The paths a drill-down reads: the columns, then `of` (when SUM or MEDIAN reads a
    field the columns do not show) and the link's argument."""
    names = [column.path for column in metric.columns]
    for extra in (metric.of, metric.link.arg_path if metric.link else ""):
        if extra and extra not in names:
            names.append(extra)
    return names


def drill_down(
    metric: Metric,
    *,
    tenant: Tenant,
    start: date,
    end: date,
    filters: Filters | None = None,
    using: str | None = None,
) -> list[tuple]:
    """The rows behind the figure, as the values of `column_names(metric)`."""
    qs = rows_of(metric, tenant=tenant, start=start, end=end, filters=filters, using=using)
    return list(qs.values_list(*column_names(metric)))


def recount(metric: Metric, table: list[tuple]):
    """The figure recomputed in Python from its drill-down rows (`drill_down`): what the
    nightly check compares with `value()`."""
    if metric.aggregate == COUNT:
        return len(table)
    index = column_names(metric).index(metric.of)
    numbers = sorted(float(row[index]) for row in table if row[index] is not None)
    if metric.aggregate == SUM:
        return sum(numbers) if numbers else 0
    if not numbers:
        return None
    middle = len(numbers) // 2
    if len(numbers) % 2:
        return numbers[middle]
    return (numbers[middle - 1] + numbers[middle]) / 2
