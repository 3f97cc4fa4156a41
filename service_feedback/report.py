"""The service metrics report (F30): over a period of local days, per product line and per
region (province), and per week or month for the trend,

- **first response within target**: tickets whose first response took at most the
  tenant's target (`ServiceSettings.first_response_minutes`), over the tickets with a
  first response;
- **mean and median resolution time**: over the resolved tickets;
- **repeat complaints**: tickets whose customer had another ticket with the same fault
  code in the 30 days before it, over all the tickets;
- **data quality**: tickets whose minutes were refused at intake (`duration_issue`),
  left out of every rate and time above but counted here.

Minutes are the ones stored on the ticket at intake (`service_feedback.minutes`: calendar
or working minutes, per `ServiceSettings.working_hours_only`); the report only counts
them. All the figures come from one set-based statement (GROUPING SETS over product line,
province and period bucket), whatever the number of tickets.

Every figure links to the ticket list (`/service/tickets/`) with the period, the row's
filter and the figure's filter; the list applies the same definitions (the Q objects
below), so the link shows exactly the rows counted. The parameters are in `LIST_PARAMS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.report_rows import Cell, Row

REPEAT_DAYS = 30
DEFAULT_DAYS = 30
MAX_DAYS = 366
# The ticket list (another page of the app), named by its path.
TICKET_LIST = "/service/tickets/"
# A blank product line or province, in a link's filter.
BLANK = "-"

# The ticket list's query parameters the report links with (service_feedback.filters reads
# opened_from, opened_to, product_line, region and quality; the others are the report's
# own figures, defined by the Q functions below, for the list to apply):
LIST_PARAMS = {
    "opened_from": "YYYY-MM-DD: opened on or after that local day",
    "opened_to": "YYYY-MM-DD: opened on or before that local day",
    "product_line": "the product line, exactly; '-' for none",
    "region": "the province, exactly; '-' for none",
    "quality": "'duration': minutes refused at intake (duration_issue_q)",
    "first_response": "'yes': first response minutes known, no duration problem (responded_q)",
    "first_response_max": "N: responded within N minutes, no duration problem (in_target_q(N))",
    "resolution": "'yes': resolution minutes known, no duration problem (resolved_q)",
    "repeat": "'yes': a repeat complaint (repeat_q)",
}


# -- the definitions (for the ticket list's filters too) -------------------------------------


def duration_issue_q() -> Q:
    return ~Q(duration_issue="")


def responded_q() -> Q:
    return Q(first_response_minutes__isnull=False, duration_issue="")


def unresponded_q() -> Q:
    return Q(first_response_minutes__isnull=True, duration_issue="")


def in_target_q(target_minutes: int) -> Q:
    return Q(first_response_minutes__lte=target_minutes, duration_issue="")


def resolved_q() -> Q:
    return Q(resolution_minutes__isnull=False, duration_issue="")


def repeat_q() -> Q:
    """A repeat complaint: the ticket's customer had another ticket with the same fault
    code opened in the 30 days before it (earlier, or at the same instant with a lower id)."""
    from service_feedback.models import Ticket

    earlier = Ticket.objects.filter(
        customer_id=OuterRef("customer_id"),
        fault_code=OuterRef("fault_code"),
        # Bounded on both sides, so the probe is a short range of the ticket_customer index.
        opened_at__gte=OuterRef("opened_at") - timedelta(days=REPEAT_DAYS),
        opened_at__lte=OuterRef("opened_at"),
    ).filter(Q(opened_at__lt=OuterRef("opened_at")) | Q(id__lt=OuterRef("id")))
    return Q(customer__isnull=False) & ~Q(fault_code="") & Q(Exists(earlier))


# -- the period -------------------------------------------------------------------------------

WEEK, MONTH = "week", "month"


class PeriodForm(forms.Form):
    """The report's period: local days [from, to] in the tenant's time zone (empty: the
    last 30 days up to today), and the trend's bucket (empty: weeks up to 92 days,
    months beyond)."""

    opened_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    opened_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    grain = forms.ChoiceField(
        label=_("Trend by"),
        required=False,
        choices=[("", _("Automatic")), (WEEK, _("Week")), (MONTH, _("Month"))],
    )

    def __init__(self, data=None, *, today: date, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        end = cleaned.get("opened_to") or self.today
        start = cleaned.get("opened_from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            self.add_error("opened_to", gettext("The end date is before the start date."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error(
                "opened_from",
                gettext("The range is longer than %(days)s days: choose a later start date.")
                % {"days": MAX_DAYS},
            )
        cleaned["opened_from"], cleaned["opened_to"] = start, end
        if not cleaned.get("grain"):
            cleaned["grain"] = WEEK if (end - start).days < 92 else MONTH
        return cleaned

    @property
    def start(self) -> date:
        return self.cleaned_data["opened_from"]

    @property
    def end(self) -> date:
        return self.cleaned_data["opened_to"]

    @property
    def bucket(self) -> str:
        return self.cleaned_data["grain"]


def period_bounds(start: date, end: date, tz) -> tuple[datetime, datetime]:
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


# -- the figures ------------------------------------------------------------------------------

COLUMNS = (
    ("tickets", _("tickets")),
    ("responded", _("with a first response")),
    ("in_target", _("first response within target")),
    ("in_target_rate", _("within-target rate")),
    ("resolved", _("resolved")),
    ("mean_resolution", _("mean resolution time")),
    ("median_resolution", _("median resolution time")),
    ("repeats", _("repeat complaints")),
    ("repeat_rate", _("repeat-complaint rate")),
    ("duration_issues", _("data quality: durations refused")),
)


@dataclass
class Report:
    start: date
    end: date
    grain: str
    target_minutes: int
    working_hours_only: bool
    product_lines: list[Row]
    provinces: list[Row]
    trend: list[Row]
    total: Row
    chart: dict = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def data_quality(self) -> Cell:
        return self.total.cell("duration_issues")


def percent(numerator: int, denominator: int) -> tuple[float | None, str]:
    if not denominator:
        return None, "—"
    ratio = numerator / denominator
    return ratio, f"{ratio * 100:.1f}%"


def minutes_text(value: float | None) -> str:
    if value is None:
        return "—"
    minutes = round(value)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return gettext("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    return gettext("%(m)s min") % {"m": minutes}


class _Links:
    """Ticket-list URLs: the period, a row's filters, a figure's filters."""

    def __init__(self, start: date, end: date, target: int):
        self.range = {"opened_from": start.isoformat(), "opened_to": end.isoformat()}
        self.figures = {
            "tickets": {},
            "responded": {"first_response": "yes"},
            "in_target": {"first_response_max": str(target)},
            "in_target_rate": {"first_response_max": str(target)},
            "resolved": {"resolution": "yes"},
            "mean_resolution": {"resolution": "yes"},
            "median_resolution": {"resolution": "yes"},
            "repeats": {"repeat": "yes"},
            "repeat_rate": {"repeat": "yes"},
            "duration_issues": {"quality": "duration"},
        }

    def __call__(self, row_filters: dict, figure: str) -> str:
        params = {**self.range, **row_filters, **self.figures[figure]}
        return f"{TICKET_LIST}?{urlencode(params)}"


# One statement: each ticket of the period with its bucket and repeat flag, then the
# figures per product line, per province, per bucket and in total (GROUPING SETS). A
# ticket repeats when the ticket before it of the same customer and fault code (by
# opening, then id: `lag`) opened at most 30 days earlier; so the window reads the 30
# days before the period too, and one sort replaces a probe per ticket.
SQL = """
SELECT GROUPING(product_line) AS g_line, GROUPING(province) AS g_province,
       GROUPING(bucket) AS g_bucket, product_line, province, bucket,
       count(*) AS tickets,
       count(*) FILTER (WHERE NOT issue AND frm IS NOT NULL) AS responded,
       count(*) FILTER (WHERE NOT issue AND frm <= %(target)s) AS in_target,
       count(*) FILTER (WHERE NOT issue AND rm IS NOT NULL) AS resolved,
       avg(rm) FILTER (WHERE NOT issue) AS mean_resolution,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rm) FILTER (WHERE NOT issue)
           AS median_resolution,
       count(*) FILTER (WHERE repeat) AS repeats,
       count(*) FILTER (WHERE issue) AS duration_issues
FROM (
    SELECT product_line, province,
           date_trunc(%(grain)s, opened_at AT TIME ZONE %(tz)s)::date AS bucket,
           duration_issue <> '' AS issue,
           first_response_minutes AS frm,
           resolution_minutes AS rm,
           coalesce(previous >= opened_at - make_interval(days => %(repeat_days)s), false)
               AS repeat
    FROM (
        SELECT t.opened_at, t.product_line, t.province, t.duration_issue,
               t.first_response_minutes, t.resolution_minutes,
               CASE WHEN t.customer_id IS NOT NULL AND t.fault_code <> '' THEN
                   lag(t.opened_at) OVER (
                       PARTITION BY t.customer_id, t.fault_code ORDER BY t.opened_at, t.id
                   )
               END AS previous
        FROM service_feedback_ticket t
        WHERE t.tenant_id = %(tenant)s
          AND t.opened_at >= %(since)s - make_interval(days => %(repeat_days)s)
          AND t.opened_at < %(until)s
    ) AS w
    WHERE opened_at >= %(since)s
) AS t
GROUP BY GROUPING SETS ((product_line), (province), (bucket), ())
"""

FIGURES = (
    "tickets",
    "responded",
    "in_target",
    "resolved",
    "mean_resolution",
    "median_resolution",
    "repeats",
    "duration_issues",
)


def figures(*, tenant, start: date, end: date, grain: str, target: int) -> list[dict]:
    """The raw figures: one dict per group, with `group` = "line", "province", "bucket"
    or "total" and `key` the group's value."""
    since, until = period_bounds(start, end, tenant.tzinfo)
    params = {
        "grain": grain,
        "tz": str(tenant.tzinfo),
        "repeat_days": REPEAT_DAYS,
        "tenant": tenant.pk,
        "since": since,
        "until": until,
        "target": target,
    }
    with connection.cursor() as cursor:
        cursor.execute(SQL, params)
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    out = []
    for row in rows:
        if not row["g_line"]:
            group, key = "line", row["product_line"]
        elif not row["g_province"]:
            group, key = "province", row["province"]
        elif not row["g_bucket"]:
            group, key = "bucket", row["bucket"]
        else:
            group, key = "total", None
        figures_ = {name: row[name] for name in FIGURES}
        for name in ("mean_resolution", "median_resolution"):
            if figures_[name] is not None:
                figures_[name] = float(figures_[name])
        out.append({"group": group, "key": key, **figures_})
    return out


def _row(links, key: str, label: str, f: dict, row_filters: dict, is_total=False) -> Row:
    def count(name):
        value = f[name]
        return Cell(name, value, str(value), links(row_filters, name) if value else "")

    def rate(name, numerator, denominator):
        ratio, text = percent(f[numerator], f[denominator])
        return Cell(name, ratio, text, links(row_filters, name) if f[numerator] else "")

    def duration(name):
        value = f[name]
        return Cell(
            name, value, minutes_text(value), links(row_filters, name) if f["resolved"] else ""
        )

    cells = [
        count("tickets"),
        count("responded"),
        count("in_target"),
        rate("in_target_rate", "in_target", "responded"),
        count("resolved"),
        duration("mean_resolution"),
        duration("median_resolution"),
        count("repeats"),
        rate("repeat_rate", "repeats", "tickets"),
        count("duration_issues"),
    ]
    return Row(key, label, cells, is_total)


def _bucket_days(bucket: date, grain: str, start: date, end: date) -> tuple[date, date]:
    """A bucket's days, clipped to the period."""
    if grain == WEEK:
        last = bucket + timedelta(days=6)
    else:
        following = date(bucket.year + bucket.month // 12, bucket.month % 12 + 1, 1)
        last = following - timedelta(days=1)
    return max(bucket, start), min(last, end)


def service_report(start: date, end: date, *, tenant, grain: str = WEEK) -> Report:
    """The report over the local days [start, end] of `tenant`, in its context."""
    from service_feedback.services import settings_for

    settings = settings_for(tenant)
    target = settings.first_response_minutes
    links = _Links(start, end, target)
    found = figures(tenant=tenant, start=start, end=end, grain=grain, target=target)
    empty = dict.fromkeys(FIGURES, 0) | {"mean_resolution": None, "median_resolution": None}
    total = next((f for f in found if f["group"] == "total"), empty)
    none = gettext("(none)")

    def rows_of(group: str, param: str) -> list[Row]:
        rows = sorted(
            (f for f in found if f["group"] == group),
            key=lambda f: (-f["tickets"], f["key"] or ""),
        )
        return [
            _row(links, f"{param}:{f['key']}", f["key"] or none, f, {param: f["key"] or BLANK})
            for f in rows
        ]

    trend = []
    for f in sorted((f for f in found if f["group"] == "bucket"), key=lambda f: f["key"]):
        first, last = _bucket_days(f["key"], grain, start, end)
        bucket_links = _Links(first, last, target)
        label = f"{first:%Y-%m}" if grain == MONTH else f"{first:%Y-%m-%d}"
        trend.append(_row(bucket_links, f"bucket:{first.isoformat()}", label, f, {}))
    report = Report(
        start=start,
        end=end,
        grain=grain,
        target_minutes=target,
        working_hours_only=settings.working_hours_only,
        product_lines=rows_of("line", "product_line"),
        provinces=rows_of("province", "region"),
        trend=trend,
        total=_row(links, "total", gettext("All tickets"), total, {}, is_total=True),
    )
    report.chart = _chart(trend)
    return report


def _chart(trend: list[Row]) -> dict:
    """The trend chart's data: rates in percent, times in hours, each point's link."""

    def points(name, scale):
        out = []
        for row in trend:
            cell = row.cell(name)
            value = None if cell.value is None else round(cell.value * scale, 2)
            out.append({"value": value, "url": cell.url})
        return out

    return {
        "buckets": [row.label for row in trend],
        "rates": [
            {"name": gettext("Within-target rate (%)"), "data": points("in_target_rate", 100)},
            {"name": gettext("Repeat-complaint rate (%)"), "data": points("repeat_rate", 100)},
        ],
        "times": [
            {"name": gettext("Mean resolution (h)"), "data": points("mean_resolution", 1 / 60)},
            {
                "name": gettext("Median resolution (h)"),
                "data": points("median_resolution", 1 / 60),
            },
        ],
        "rate_axis": gettext("%"),
        "time_axis": gettext("hours"),
    }
