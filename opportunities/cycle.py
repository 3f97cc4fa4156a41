"""The lead-to-contract cycle report (F38, docs/cycle.md): per monthly cohort of leads
(by the month they were created, in the tenant's time zone) the leads, the valid ones,
the contracts won from them, the median days from lead to contract and their histogram,
and the share of the valid leads still open 120 days after creation, shown only for
cohorts whose every lead is 120 days old.

Every figure is a registered metric (opportunities.cycle_metrics): the cohorts' figures
come from two grouped queries (one per family of rows, grouped by COHORT), the range's
counts are the cohorts' added up and its median one more query (crm.metrics.totals_and_by),
and each number links to its rows (crm.metrics.drill_url)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.formatting import format_month
from crm.metrics import (
    Filters,
    drill_url,
    get_metric,
    get_rate,
    period_bounds,
    totals_and_by,
)
from crm.models import Tenant
from crm.report_rows import Cell, Row
from opportunities import cycle_metrics as cm
from opportunities.forecast import add_months

DEFAULT_COHORTS = 12
MAX_COHORTS = 24

LEAD_KEYS = (cm.LEADS, cm.VALID, cm.MATURED, cm.OPEN_120)
CONTRACT_KEYS = (cm.WON, cm.MEDIAN_DAYS, *(cm.bucket_key(name) for name, *_rest in cm.BUCKETS))
# The table's columns: (cell name, heading).
COLUMNS = (
    ("leads", gettext_lazy("Leads")),
    ("valid", gettext_lazy("Valid")),
    ("won", gettext_lazy("Contracts won")),
    ("median_days", gettext_lazy("Median days")),
    *((f"days_{name}", label) for name, label, *_rest in cm.BUCKETS),
    ("matured", gettext_lazy("Valid, 120 days old")),
    ("open_120", gettext_lazy("Still open at 120 days")),
    ("open_share", gettext_lazy("Open after 120 days")),
)
CELL_KEYS = {
    "leads": cm.LEADS,
    "valid": cm.VALID,
    "won": cm.WON,
    "median_days": cm.MEDIAN_DAYS,
    **{f"days_{name}": cm.bucket_key(name) for name, *_rest in cm.BUCKETS},
    "matured": cm.MATURED,
    "open_120": cm.OPEN_120,
}


class CohortForm(forms.Form):
    """The cohorts (from month, to month: "YYYY-MM"), and the filters (a channel id, a
    member id). The ids are checked against the tenant by the view (404 when not found)."""

    start = forms.DateField(label=gettext_lazy("From"), required=False, input_formats=["%Y-%m"])
    end = forms.DateField(label=gettext_lazy("To"), required=False, input_formats=["%Y-%m"])
    channel = forms.IntegerField(label=gettext_lazy("Channel"), required=False, min_value=1)
    rep = forms.IntegerField(label=gettext_lazy("Rep"), required=False, min_value=1)

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        end = data.get("end") or self.today.replace(day=1)
        start = data.get("start") or add_months(end, -(DEFAULT_COHORTS - 1))
        if start > end:
            raise forms.ValidationError(_("The first month comes after the last one."))
        if _months(start, end) > MAX_COHORTS:
            raise forms.ValidationError(
                _("At most %(n)s cohorts (months) at once.") % {"n": MAX_COHORTS}
            )
        data["start"], data["end"] = start, end
        return data


def _months(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


def month_end(month: date) -> date:
    return add_months(month, 1) - timedelta(days=1)


@dataclass
class Cohort:
    month: date  # its first day
    row: Row
    mature: bool  # every lead of it is 120 days old: the share is shown


@dataclass
class Report:
    start: date  # the first cohort's first day
    end: date  # the last cohort's last day
    cohorts: list[Cohort]
    total: Row
    mature_until: date | None  # the total's share covers the cohorts up to this month
    chart: dict


def _cell(name: str, value, url: str) -> Cell:
    if value is None:
        return Cell(name, None, "—", url)
    text = f"{value:.1f}".removesuffix(".0") if name == "median_days" else str(value)
    return Cell(name, value, text, url)


def _share_cell(open_, matured, shown: bool) -> Cell:
    if not shown or not matured:
        return Cell("open_share", None, "—")
    share = open_ / matured
    return Cell("open_share", share, f"{share * 100:.1f}%")


def _row(key, label, figures, start, end, filters, *, mature: bool, is_total=False) -> Row:
    cells = []
    for name, _heading in COLUMNS:
        if name == "open_share":
            cells.append(_share_cell(figures[cm.OPEN_120], figures[cm.MATURED], mature))
            continue
        metric_key = CELL_KEYS[name]
        cells.append(_cell(name, figures[metric_key], drill_url(metric_key, start, end, filters)))
    return Row(key=key, label=label, cells=cells, is_total=is_total)


def is_mature(tenant: Tenant, month: date) -> bool:
    """Whether every lead created in `month` is 120 days old at the start of today."""
    _since, until = period_bounds(tenant, month, month_end(month))
    return until <= cm.matured_since(tenant)


def cycle_report(
    tenant: Tenant,
    start_month: date,
    end_month: date,
    *,
    filters: Filters | None = None,
    using: str | None = None,
) -> Report:
    """The cohorts from `start_month` to `end_month` (first days of months)."""
    found = [get_metric(k) for k in (*LEAD_KEYS, *CONTRACT_KEYS)]
    start, end = start_month, month_end(end_month)
    filters = filters or {}
    # The cohorts' figures and the range's (a count is its cohorts' added up: every row is
    # in the cohort of its month), one grouped query per family and one for the median.
    totals, grouped = totals_and_by(
        found, cm.COHORT, tenant=tenant, start=start, end=end, filters=filters, using=using
    )
    by_month = {_as_date(k): v for k, v in grouped.items()}
    empty = {m.key: (None if m.aggregate == "median" else 0) for m in found}
    cohorts = []
    month = start_month
    while month <= end_month:
        figures = {**empty, **by_month.get(month, {})}
        mature = is_mature(tenant, month)
        row = _row(
            month.isoformat(),
            format_month(month),
            figures,
            month,
            month_end(month),
            filters,
            mature=mature,
        )
        cohorts.append(Cohort(month, row, mature))
        month = add_months(month, 1)

    matured_months = [c.month for c in cohorts if c.mature]
    mature_until = matured_months[-1] if matured_months else None
    total = _row(
        "total", _("All cohorts"), totals, start, end, filters, mature=False, is_total=True
    )
    if mature_until is not None:
        # The total's share: over the cohorts old enough (the first ones of the range),
        # their counts added up.
        old_enough = [c for c in cohorts if c.month <= mature_until]
        share = {
            key: sum(by_month.get(c.month, {}).get(key, 0) for c in old_enough)
            for key in (cm.MATURED, cm.OPEN_120)
        }
        total.cells[-1] = _share_cell(share[cm.OPEN_120], share[cm.MATURED], True)
    return Report(start, end, cohorts, total, mature_until, _chart(cohorts))


def _as_date(value) -> date:
    return value.date() if hasattr(value, "date") else value


def _chart(cohorts: list[Cohort]) -> dict:
    """The chart's data: per cohort the contracts in each bucket (stacked bars, each
    linked to its rows) and the median days (a line)."""
    names = [str(label) for _name, label, *_rest in cm.BUCKETS]
    series = []
    for (name, *_rest), label in zip(cm.BUCKETS, names, strict=True):
        data = []
        for cohort in cohorts:
            cell = cohort.row.cell(f"days_{name}")
            data.append({"value": cell.value or 0, "url": cell.url})
        series.append({"name": label, "data": data})
    return {
        "months": [cohort.row.label for cohort in cohorts],
        "series": series,
        "median": [cohort.row.cell("median_days").value for cohort in cohorts],
        "names": {"median": _("Median days"), "days": _("days"), "contracts": _("contracts")},
    }


def csv_header() -> list[str]:
    labels = []
    for name, heading in COLUMNS:
        if name == "open_share":
            labels.append(_("%(figure)s (%%)") % {"figure": heading})
        elif name.startswith("days_"):
            labels.append(_("Contracts in %(days)s days") % {"days": heading})
        else:
            labels.append(str(heading))
    return [_("Cohort"), *labels]


def csv_rows(report: Report) -> list[list]:
    out = []
    for row in [*(c.row for c in report.cohorts), report.total]:
        values = []
        for cell in row.cells:
            if cell.value is None:
                values.append("")
            elif cell.name == "open_share":
                values.append(f"{cell.value * 100:.1f}")
            elif cell.name == "median_days":
                values.append(f"{cell.value:.1f}")
            else:
                values.append(cell.value)
        out.append([str(row.label), *values])
    return out


def definitions() -> list[tuple[str, str]]:
    """What each figure counts, from the registry (the page's footnotes)."""
    keys = (cm.LEADS, cm.VALID, cm.WON, cm.MEDIAN_DAYS, cm.MATURED, cm.OPEN_120)
    found = [(get_metric(k).label, get_metric(k).definition) for k in keys]
    rate = get_rate(cm.OPEN_SHARE)
    found.append((rate.label, rate.definition))
    return found
