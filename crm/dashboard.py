"""The manager dashboard's tiles (/dashboard/, crm.views_dashboard): which figures it
shows, registered by the apps as their metrics are (crm.metrics), and the figures, tables
and chart it computes from them.

    from crm.dashboard import Tile, register_tile

    register_tile(Tile("leads.delivered", metric="leads.delivered", order=10, chart=True))
    register_tile(Tile("leads.valid_24h_rate", rate="leads.valid_24h_rate", order=20))

- A tile shows one registered Metric, or one Rate (the share, with its numerator and
  denominator); `order` places it; `chart` draws its daily series on the chart.
- Every number is a link to the drill-down list of its rows (crm.metrics.drill_url), for
  the same period and filters: the list's row count (or sum) is the number.
- Figures are read with `values_of` (one query per family of metrics per period),
  breakdowns with `values_by` (one per family), the chart with `series` (one per charted
  metric, over the period and the previous one together): the query count depends on
  the tiles, never on the rows.
- A tile whose metrics cannot be filtered as asked (a region filter on a metric without
  a region) is left out at that level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext

from crm.metrics import (
    MEDIAN,
    Filters,
    Metric,
    Rate,
    drill_url,
    get_metric,
    get_rate,
    series,
    supports,
    values_by,
    values_of,
)
from crm.models import Membership, Tenant
from crm.periods import Period


@dataclass(frozen=True)
class Tile:
    key: str
    metric: str = ""  # a metric key
    rate: str = ""  # or a rate key
    order: int = 100
    chart: bool = False  # its daily series is drawn on the dashboard's chart (metrics only)

    def __post_init__(self) -> None:
        if bool(self.metric) == bool(self.rate):
            raise ValueError(f"tile {self.key!r}: a metric or a rate, not both")
        if self.chart and not self.metric:
            raise ValueError(f"tile {self.key!r}: only a metric's tile is charted")


_tiles: dict[str, Tile] = {}


def register_tile(tile: Tile) -> None:
    """Show a tile on the dashboard (from an AppConfig.ready()); a key again replaces it."""
    _tiles[tile.key] = tile


def tiles() -> list[Tile]:
    return sorted(_tiles.values(), key=lambda t: (t.order, t.key))


def tile_metrics(tile: Tile) -> list[Metric]:
    """The metrics a tile reads: its metric, or its rate's denominator and numerator
    (empty when one is not registered)."""
    if tile.metric:
        keys = [tile.metric]
    else:
        rate = get_rate(tile.rate)
        if rate is None:
            return []
        keys = [rate.denominator, rate.numerator]
    found = [get_metric(key) for key in keys]
    return [] if None in found else found


def shown_tiles(filters: Filters) -> list[tuple[Tile, list[Metric]]]:
    """The registered tiles whose metrics exist and can all be filtered by `filters`."""
    shown = []
    for tile in tiles():
        found = tile_metrics(tile)
        if found and all(supports(metric, filters) for metric in found):
            shown.append((tile, found))
    return shown


def _unique(found) -> list[Metric]:
    seen: dict[str, Metric] = {}
    for metric in found:
        seen.setdefault(metric.key, metric)
    return list(seen.values())


# --- Texts ---------------------------------------------------------------------------------


def _number(value) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def figure_text(value, unit: str = "") -> str:
    """A figure as the pages print it: 1,234; ¥480,000; 42 min; 63 d; "—" for none."""
    if value is None:
        return "—"
    if unit == "amount":
        value = Decimal(value)
        if value == value.to_integral_value():
            return f"¥{value:,.0f}"
        return f"¥{value:,.2f}"
    if unit == "minutes":
        return gettext("%(value)s min") % {"value": _number(value)}
    if unit == "days":
        return gettext("%(value)s d") % {"value": _number(value)}
    return _number(value)


def share_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def delta_text(current, previous, unit: str = "") -> str:
    """The change from the previous period: +12, −¥30,000, ±0; "" when one is missing."""
    if current is None or previous is None:
        return ""
    change = current - previous
    if change == 0:
        return "±0"
    text = figure_text(abs(change), unit)
    return f"+{text}" if change > 0 else f"−{text}"


def points_text(current: float | None, previous: float | None) -> str:
    """The change of a share, in percentage points."""
    if current is None or previous is None:
        return ""
    change = round((current - previous) * 100, 1)
    if change == 0:
        return "±0"
    text = gettext("%(points)s pp") % {"points": f"{abs(change):.1f}"}
    return f"+{text}" if change > 0 else f"−{text}"


# --- The tiles' figures --------------------------------------------------------------------


@dataclass
class Number:
    """One number and the link to its rows."""

    value: Any
    text: str
    url: str


@dataclass
class TileFigure:
    tile: Tile
    label: str
    definition: str
    current: Number  # the metric's figure, or the share (linked to the numerator's rows)
    previous: Number
    delta: str
    direction: int  # 1 up, -1 down, 0 flat or unknown
    rate: Rate | None = None
    numerator: Number | None = None
    denominator: Number | None = None
    previous_numerator: Number | None = None
    previous_denominator: Number | None = None
    numbers: list[Number] = field(default_factory=list)  # every linked number of the tile


def _direction(current, previous) -> int:
    if current is None or previous is None or current == previous:
        return 0
    return 1 if current > previous else -1


def tile_figures(
    shown: list[tuple[Tile, list[Metric]]],
    *,
    tenant: Tenant,
    period: Period,
    filters: Filters,
    using: str,
) -> list[TileFigure]:
    """Each tile's figure for the period and the previous one: `values_of` twice, one
    query per family each time."""
    found = _unique(metric for _tile, metrics in shown for metric in metrics)
    before_start, before_end = period.previous
    now = values_of(
        found, tenant=tenant, start=period.start, end=period.end, filters=filters, using=using
    )
    before = values_of(
        found, tenant=tenant, start=before_start, end=before_end, filters=filters, using=using
    )

    def number(metric: Metric, values: dict, start: date, end: date) -> Number:
        value = values[metric.key]
        return Number(
            value, figure_text(value, metric.unit), drill_url(metric.key, start, end, filters)
        )

    figures = []
    for tile, metrics in shown:
        if tile.metric:
            metric = metrics[0]
            current = number(metric, now, period.start, period.end)
            previous = number(metric, before, before_start, before_end)
            figures.append(
                TileFigure(
                    tile=tile,
                    label=metric.label,
                    definition=metric.definition,
                    current=current,
                    previous=previous,
                    delta=delta_text(current.value, previous.value, metric.unit),
                    direction=_direction(current.value, previous.value),
                    numbers=[current, previous],
                )
            )
            continue
        rate = get_rate(tile.rate)
        denominator, numerator = metrics
        den = number(denominator, now, period.start, period.end)
        num = number(numerator, now, period.start, period.end)
        den_before = number(denominator, before, before_start, before_end)
        num_before = number(numerator, before, before_start, before_end)
        share = rate.share(num.value, den.value)
        share_before = rate.share(num_before.value, den_before.value)
        figures.append(
            TileFigure(
                tile=tile,
                label=rate.label,
                definition=rate.definition,
                current=Number(share, share_text(share), num.url),
                previous=Number(share_before, share_text(share_before), num_before.url),
                delta=points_text(share, share_before),
                direction=_direction(share, share_before),
                rate=rate,
                numerator=num,
                denominator=den,
                previous_numerator=num_before,
                previous_denominator=den_before,
                numbers=[num, den, num_before, den_before],
            )
        )
    return figures


# --- Breakdowns: the region table, the rep table --------------------------------------------


@dataclass
class BreakdownRow:
    value: Any  # the dimension's value ("" for the rows without one)
    label: str
    cells: list[Number]
    link: str = ""  # the dashboard one level down (set by the page)


@dataclass
class Breakdown:
    dimension: str
    columns: list[Metric]
    rows: list[BreakdownRow]


def breakdown_columns(shown: list[tuple[Tile, list[Metric]]], dimension: str) -> list[Metric]:
    """The tiles' metrics (a rate's numerator and denominator) that have `dimension`, in
    the tiles' order; medians left out (a median per row is not part of the figure)."""
    return [
        metric
        for metric in _unique(m for _tile, metrics in shown for m in metrics)
        if metric.dimension(dimension) is not None and metric.aggregate != MEDIAN
    ]


def breakdown(
    shown: list[tuple[Tile, list[Metric]]],
    dimension: str,
    *,
    tenant: Tenant,
    period: Period,
    filters: Filters,
    using: str,
    labels: Callable[[list], dict[Any, str]],
    empty_label: str,
) -> Breakdown:
    """The figures per value of `dimension` (`values_by`, one query per family), each
    cell linked to its rows. Rows by the first column, largest first; the rows without
    a value last, as `empty_label`."""
    columns = breakdown_columns(shown, dimension)
    found = values_by(
        columns,
        dimension,
        tenant=tenant,
        start=period.start,
        end=period.end,
        filters=filters,
        using=using,
    )
    names = labels([value for value in found if value != ""])
    rows = []
    for value, figures in found.items():
        where = {**filters, dimension: value}
        cells = []
        for metric in columns:
            figure = figures.get(metric.key, 0)
            cells.append(
                Number(
                    figure,
                    figure_text(figure, metric.unit),
                    drill_url(metric.key, period.start, period.end, where),
                )
            )
        label = empty_label if value == "" else names.get(value, str(value))
        rows.append(BreakdownRow(value, label, cells))
    first = columns[0].key if columns else None

    def sort_key(row: BreakdownRow):
        lead = row.cells[0].value if first and row.cells else 0
        return (row.value == "", -(lead or 0), row.label)

    return Breakdown(dimension, columns, sorted(rows, key=sort_key))


def rep_names(tenant: Tenant, using: str) -> Callable[[list], dict[Any, str]]:
    """Reps' display names by membership id, in one query."""

    def names(ids: list) -> dict[Any, str]:
        if not ids:
            return {}
        members = (
            Membership.objects.using(using).select_related("user").filter(tenant=tenant, pk__in=ids)
        )
        return {member.pk: member.display_name for member in members}

    return names


def region_names(values: list) -> dict[Any, str]:
    return {value: str(value) for value in values}


# --- The chart -----------------------------------------------------------------------------


def chart(
    shown: list[tuple[Tile, list[Metric]]],
    *,
    tenant: Tenant,
    period: Period,
    filters: Filters,
    using: str,
) -> dict | None:
    """The charted tiles' daily series over the period and, dashed, the previous one day
    by day (one query per metric over both), each point linked to that day's rows. The
    previous period's day i is drawn at this period's day i; a previous period shorter
    than this one (28 February against 31 March) leaves the last days empty, a longer one
    (a quarter of 92 days before one of 90) is drawn for this period's days only. None
    when no tile is charted."""
    charted = [metrics[0] for tile, metrics in shown if tile.chart and metrics[0].dated_by]
    if not charted:
        return None
    before_start, before_end = period.previous
    days = period.days
    current_days = [period.start + timedelta(days=i) for i in range(days)]
    previous_days = [before_start + timedelta(days=i) for i in range(days)]
    previous_days = [day if day <= before_end else None for day in previous_days]
    out: dict[str, Any] = {
        "days": [day.isoformat() for day in current_days],
        "previous_days": [day.isoformat() if day else "" for day in previous_days],
        "series": [],
        "empty": True,
    }
    for metric in charted:
        values = dict(
            series(
                metric,
                tenant=tenant,
                start=min(before_start, period.start),
                end=max(before_end, period.end),
                filters=filters,
                using=using,
            )
        )
        for previous, part in ((False, current_days), (True, previous_days)):
            data = []
            for day in part:
                if day is None:
                    data.append({"value": None})
                    continue
                value = values.get(day, 0)
                plain = float(value) if isinstance(value, Decimal) else value
                if plain:
                    out["empty"] = False
                data.append({"value": plain, "url": drill_url(metric.key, day, day, filters)})
            name = str(metric.label)
            if previous:
                name = gettext("%(figure)s (previous period)") % {"figure": name}
            out["series"].append({"name": name, "previous": previous, "data": data})
    return out
