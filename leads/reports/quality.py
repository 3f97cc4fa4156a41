"""The lead-quality report (F36): per channel and per source grade over a date range, the
leads delivered, verified within 24 h, valid within 24 h (and the rate), invalid, revisits
and suspects; the invalid-reason distribution; per rep the 72 h follow-up rate of valid
leads and the median time to first touch.

A range's figures are a `Tally`: the sum of the daily roll-ups of its fresh days
(`fresh_days`, `tally_rolled_up`) and of a live count of its other days (`tally_live`:
three grouped queries with conditional aggregation, `Count(..., filter=Q(...))`, whatever
the number of leads). The roll-ups are written by leads/reports/rollups.py with
`tally_live` itself, one day at a time, so both paths count by the same code.
The definitions live here once, as Q objects, and the lead list's filters
(leads/filters.py) use the same ones, so a figure's link to the list shows exactly the
rows counted. The definitions are written out in
docs/board.md ("Lead-quality report") and under the report's tables.
"""

from __future__ import annotations

import statistics
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connections, router
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
)
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.metrics import read_as_reports_query
from crm.models import Membership
from crm.report_rows import Cell, Row
from leads.models import Channel, InvalidReason, Lead, SourceGrade, Verification

VERIFY_WINDOW = timedelta(hours=24)
FOLLOW_UP_WINDOW = timedelta(hours=72)
DEFAULT_DAYS = 30
MAX_DAYS = 366

VALID = frozenset(Verification.valid())
INVALID = frozenset(set(Verification.values) - VALID)


# -- the definitions (shared with the lead list's filters) ------------------------------------


def verified_24h_q() -> Q:
    """Verified within 24 h: verified_at − created_at ≤ 24 h."""
    return Q(verified_at__isnull=False, verified_at__lte=F("created_at") + VERIFY_WINDOW)


def valid_q() -> Q:
    return Q(verification__in=VALID)


def invalid_q() -> Q:
    return Q(verification__in=INVALID)


def unverified_q() -> Q:
    return Q(verification="")


def followed_up_q() -> Q:
    """A valid lead followed up within 72 h: a follow-up (customers.Interaction) on the
    lead by its owner with verified_at ≤ at ≤ verified_at + 72 h. The next step the
    verdict itself logged (kind verification) is not a follow-up."""
    from customers.models import Interaction, InteractionKind

    deadline = ExpressionWrapper(
        OuterRef("verified_at") + FOLLOW_UP_WINDOW, output_field=DateTimeField()
    )
    follow_up = Interaction.objects.filter(
        kind=InteractionKind.FOLLOW_UP,
        lead=OuterRef("pk"),
        by=OuterRef("owner"),
        at__gte=OuterRef("verified_at"),
        at__lte=deadline,
    )
    return valid_q() & Q(Exists(follow_up))


def touched_q() -> Q:
    """The leads the median time to first touch is taken over: assigned and touched."""
    return Q(assigned_at__isnull=False, first_touch_at__isnull=False)


# -- the date range -------------------------------------------------------------------------


class RangeForm(forms.Form):
    """The report's range: local days [from, to] in the tenant's time zone. Empty fields
    take the defaults: the last 30 days up to today."""

    created_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, *, today: date, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        end = cleaned.get("created_to") or self.today
        start = cleaned.get("created_from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            self.add_error("created_to", gettext("The end date is before the start date."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error(
                "created_from",
                gettext("The range is longer than %(days)s days: choose a later start date.")
                % {"days": MAX_DAYS},
            )
        cleaned["created_from"], cleaned["created_to"] = start, end
        return cleaned

    @property
    def start(self) -> date:
        return self.cleaned_data["created_from"]

    @property
    def end(self) -> date:
        return self.cleaned_data["created_to"]


def range_bounds(start: date, end: date, tz) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in `tz`, as aware datetimes."""
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


# -- the figures ------------------------------------------------------------------------------

COUNTS = ("delivered", "verified_24h", "valid_24h", "invalid", "duplicates", "suspect")

# Column headings, in the order of a row's cells.
FIGURE_COLUMNS = (
    ("delivered", _("delivered")),
    ("verified_24h", _("verified within 24 h")),
    ("valid_24h", _("valid within 24 h")),
    ("valid_rate", _("24 h valid rate")),
    ("invalid", _("invalid")),
    ("duplicates", _("duplicates (revisits)")),
    ("suspect", _("suspect")),
)
REP_COLUMNS = (
    ("valid", _("valid leads")),
    ("followed_up", _("followed up within 72 h")),
    ("follow_up_rate", _("72 h follow-up rate")),
    ("touched", _("assigned and touched")),
    ("median_first_touch", _("median time to first touch")),
)

# The lead-list filters that narrow a row's leads to those behind each figure.
FIGURE_FILTERS = {
    "delivered": {},
    "verified_24h": {"verified_24h": "yes"},
    "valid_24h": {"verified_24h": "yes", "verification": "valid"},
    "valid_rate": {"verified_24h": "yes", "verification": "valid"},
    "invalid": {"verification": "invalid"},
    "duplicates": {"revisit": "yes"},
    "suspect": {"suspect": "yes"},
    "valid": {"verification": "valid"},
    "followed_up": {"followed_up": "yes"},
    "follow_up_rate": {"followed_up": "yes"},
    "touched": {"first_touch": "yes"},
    "median_first_touch": {"first_touch": "yes"},
}


def _counts() -> dict:
    return {
        "delivered": Count("pk"),
        "verified_24h": Count("pk", filter=verified_24h_q()),
        "valid_24h": Count("pk", filter=verified_24h_q() & valid_q()),
        "invalid": Count("pk", filter=invalid_q()),
        "duplicates": Count("pk", filter=Q(revisit_of__isnull=False)),
        "suspect": Count("pk", filter=Q(is_suspect=True)),
    }


@dataclass
class Report:
    start: date
    end: date
    channels: list[Row]
    grades: list[Row]
    total: Row
    reason_columns: list[tuple[str, str]]  # (key, label): channels, then grades
    reasons: list[Row]
    reps: list[Row]
    chart: dict = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def percent(numerator: int, denominator: int) -> tuple[float | None, str]:
    if not denominator:
        return None, "—"
    ratio = numerator / denominator
    return ratio, f"{ratio * 100:.1f}%"


def duration_text(value: timedelta | None) -> str:
    if value is None:
        return "—"
    minutes = round(value.total_seconds() / 60)
    sign = "−" if minutes < 0 else ""
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return sign + gettext("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return sign + gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    return sign + gettext("%(m)s min") % {"m": minutes}


class _Links:
    """Lead-list URLs for the range plus a row's and a figure's filters."""

    def __init__(self, start: date, end: date):
        self.base = reverse("leads:list")
        self.range = {"created_from": start.isoformat(), "created_to": end.isoformat()}
        # On a replica the list reads where the figures were read (crm.metrics).
        self.read = read_as_reports_query()

    def __call__(self, row_filters: dict, figure: str) -> str:
        params = {**self.range, **row_filters, **FIGURE_FILTERS[figure], **self.read}
        return f"{self.base}?{urlencode(params)}"


def _count_cell(links, row_filters, name, value) -> Cell:
    # A zero has no rows behind it: shown, not linked.
    return Cell(name, value, str(value), links(row_filters, name) if value else "")


def _figure_row(links, key, label, counts: dict, row_filters: dict, is_total=False) -> Row:
    cells = [_count_cell(links, row_filters, n, counts[n]) for n in COUNTS]
    ratio, text = percent(counts["valid_24h"], counts["delivered"])
    rate = Cell("valid_rate", ratio, text, links(row_filters, "valid_rate") if ratio else "")
    cells.insert(COUNTS.index("valid_24h") + 1, rate)
    return Row(key, label, cells, is_total)


# -- tallies: the figures before they are laid out ------------------------------------------


@dataclass
class RepTally:
    valid: int = 0
    followed_up: int = 0
    touched: int = 0
    seconds: array = field(default_factory=lambda: array("d"))  # times to first touch


@dataclass
class Tally:
    """Counts per (channel id, source grade, invalid reason id or None) and per owner id,
    for some set of leads. Tallies of disjoint sets add up (a range = its days)."""

    groups: dict = field(default_factory=lambda: defaultdict(lambda: dict.fromkeys(COUNTS, 0)))
    reps: dict = field(default_factory=lambda: defaultdict(RepTally))

    def add_group(self, key: tuple, counts: dict) -> None:
        target = self.groups[key]
        for name in COUNTS:
            target[name] += counts[name]

    def add_rep(self, owner_id: int, valid, followed_up, touched, seconds) -> None:
        rep = self.reps[owner_id]
        rep.valid += valid
        rep.followed_up += followed_up
        rep.touched += touched
        rep.seconds.extend(seconds)

    def merge(self, other: Tally) -> None:
        """Add a tally of a disjoint set of leads."""
        for key, counts in other.groups.items():
            self.add_group(key, counts)
        for owner_id, rep in other.reps.items():
            self.add_rep(owner_id, rep.valid, rep.followed_up, rep.touched, rep.seconds)


def tally_live(leads) -> Tally:
    """Count `leads` (a queryset of the tenant's leads) by the definitions above: one
    grouped query for channels × grades × reasons, one per owner (with their times to
    first touch on PostgreSQL), one for the 72 h follow-ups."""
    tally = Tally()
    leads = leads.order_by()
    for group in leads.values("channel_id", "source_grade", "invalid_reason_id").annotate(
        **_counts()
    ):
        key = (group["channel_id"], group["source_grade"], group["invalid_reason_id"])
        tally.add_group(key, group)

    owned = leads.filter(owner__isnull=False)
    aggregates = {
        "valid": Count("pk", filter=valid_q()),
        "touched": Count("pk", filter=touched_q()),
    }
    aggregates["waits"] = ArrayAgg(
        F("first_touch_at") - F("assigned_at"), filter=touched_q(), default=[]
    )
    groups = list(owned.values("owner_id").annotate(**aggregates))
    # The follow-ups in a query of their own: EXISTS in the WHERE clause becomes a
    # semi-join; inside an aggregate's FILTER it would be probed once per valid lead.
    followed = dict(
        owned.filter(followed_up_q())
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    for group in groups:
        tally.add_rep(
            group["owner_id"],
            group["valid"],
            followed.get(group["owner_id"], 0),
            group["touched"],
            (wait.total_seconds() for wait in group["waits"]),
        )
    return tally


def tally_rolled_up(days) -> Tally:
    """The tally of the leads created on `days` (local days with fresh roll-ups), read
    from leads.models.QualityDay and QualityRepDay: two queries whatever the range."""
    from leads.models import QualityDay, QualityRepDay

    tally = Tally()
    if not days:
        return tally
    days = sorted(days)
    for group in (
        QualityDay.objects.filter(day__in=days)
        .values("channel_id", "source_grade", "invalid_reason_id")
        .annotate(**{name: Sum(name) for name in COUNTS})
        .order_by()
    ):
        key = (group["channel_id"], group["source_grade"], group["invalid_reason_id"])
        tally.add_group(key, group)
    for owner_id, valid, followed_up, touched, packed in QualityRepDay.objects.filter(
        day__in=days
    ).values_list("owner_id", "valid", "followed_up", "touched", "first_touch_seconds"):
        tally.add_rep(owner_id, valid, followed_up, touched, unpack_seconds(packed))
    return tally


def fresh_days(tenant, start: date, end: date) -> set[date]:
    """The days in [start, end] whose roll-ups may be read: computed in the tenant's
    current zone, with no pending change mark in any hour they overlap. One query, on the
    database the roll-ups are read from (the reports alias inside `reading_all()`)."""
    from leads.models import ReportDay

    with connections[router.db_for_read(ReportDay)].cursor() as cursor:
        cursor.execute(
            """
            SELECT d.day FROM leads_reportday d
            WHERE d.tenant_id = %s AND d.day BETWEEN %s AND %s AND d.time_zone = %s
              AND NOT EXISTS (
                SELECT 1 FROM leads_reportchange c
                WHERE c.tenant_id = d.tenant_id
                  AND c.hour < ((d.day + 1)::timestamp AT TIME ZONE d.time_zone)
                  AND c.hour > (d.day::timestamp AT TIME ZONE d.time_zone) - interval '1 hour'
              )
            """,
            [tenant.pk, start, end, tenant.timezone],
        )
        return {row[0] for row in cursor.fetchall()}


def pack_seconds(seconds) -> bytes:
    return array("d", sorted(seconds)).tobytes()


def unpack_seconds(packed) -> array:
    values = array("d")
    values.frombytes(bytes(packed))
    return values


def day_ranges(days, tz) -> Q:
    """The leads created on any of `days` (local days in `tz`): one created_at range per
    run of consecutive days, so each is an index range scan."""
    condition = Q(pk__in=[])
    days = sorted(days)
    while days:
        first = last = days.pop(0)
        while days and days[0] == last + timedelta(days=1):
            last = days.pop(0)
        since, until = range_bounds(first, last, tz)
        condition |= Q(created_at__gte=since, created_at__lt=until)
    return condition


def lead_quality(start: date, end: date, *, tenant) -> Report:
    """`tenant`'s report over the local days [start, end] in its time zone. Runs inside
    `tenant_context(tenant)` (the request's); the page reads it inside
    `crm.metrics.reading_all(tenant)`, on the reports alias.

    Days whose roll-ups are fresh (`fresh_days`; leads.reports.rollups writes them) are read
    from them; the others (today, days with a change not yet rolled up) are counted live from
    the leads with the same definitions, and the two tallies add up."""
    links = _Links(start, end)
    every_day = {start + timedelta(days=i) for i in range((end - start).days + 1)}
    fresh = fresh_days(tenant, start, end)
    tally = tally_rolled_up(fresh)
    live = every_day - fresh
    if live:
        tally.merge(tally_live(Lead.objects.filter(day_ranges(live, tenant.tzinfo))))

    # 1. Channels × grades × reasons: the per-channel and per-grade rows and the total.
    by_channel = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    by_grade = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    total = dict.fromkeys(COUNTS, 0)
    for (channel_id, grade, _reason_id), counts in tally.groups.items():
        for name in COUNTS:
            by_channel[channel_id][name] += counts[name]
            by_grade[grade][name] += counts[name]
            total[name] += counts[name]

    # 2. The channels: every active one, and inactive ones that delivered in the range.
    channels = [
        (pk, name)
        for pk, name, active in Channel.objects.order_by("name", "pk").values_list(
            "pk", "name", "is_active"
        )
        if active or by_channel.get(pk, {}).get("delivered")
    ]
    channel_rows = [
        _figure_row(links, f"channel-{pk}", name, by_channel[pk], {"channel": pk})
        for pk, name in channels
    ]
    grade_rows = [
        _figure_row(links, f"grade-{g}", label, by_grade[g], {"source_grade": g})
        for g, label in SourceGrade.choices
    ]
    total_row = _figure_row(links, "total", gettext("All leads"), total, {}, is_total=True)

    # 3. Invalid reasons × channel × grade.
    reason_columns = [(f"channel-{pk}", name) for pk, name in channels]
    reason_columns += [(f"grade-{g}", label) for g, label in SourceGrade.choices]
    invalid = {key: counts["invalid"] for key, counts in tally.groups.items() if counts["invalid"]}
    names = {
        pk: (name, position)
        for pk, name, position in InvalidReason.objects.filter(
            pk__in={reason_id for (_c, _g, reason_id) in invalid if reason_id is not None}
        ).values_list("pk", "name", "position")
    }
    reasons: dict = {}
    for (channel_id, grade, reason_id), n in invalid.items():
        name, position = names.get(reason_id, (None, 0))
        reason = reasons.setdefault(
            reason_id,
            {
                "name": name or gettext("No reason given"),
                "order": (reason_id is None, position, reason_id or 0),
                "total": 0,
                "cols": defaultdict(int),
            },
        )
        reason["total"] += n
        reason["cols"][f"channel-{channel_id}"] += n
        reason["cols"][f"grade-{grade}"] += n
    reason_rows = []
    column_filters = {f"channel-{pk}": {"channel": pk} for pk, _name in channels}
    column_filters |= {f"grade-{g}": {"source_grade": g} for g in SourceGrade.values}
    for pk, reason in sorted(reasons.items(), key=lambda item: item[1]["order"]):
        row_filters = {"invalid_reason": "null" if pk is None else pk}
        cells = [_count_cell(links, row_filters, "invalid", reason["total"])]
        for key, _label in reason_columns:
            value = reason["cols"][key]
            cell = _count_cell(links, {**row_filters, **column_filters[key]}, "invalid", value)
            cell.name = key
            cells.append(cell)
        reason_rows.append(Row(f"reason-{pk or 'none'}", reason["name"], cells))

    chart = _chart(reason_rows, channels)
    return Report(
        start=start,
        end=end,
        channels=channel_rows,
        grades=grade_rows,
        total=total_row,
        reason_columns=reason_columns,
        reasons=reason_rows,
        reps=_rep_rows(tally, links, tenant),
        chart=chart,
    )


def _chart(reason_rows: list[Row], channels) -> dict:
    """The ECharts data: reasons on the y axis, one stacked series per channel."""
    series = []
    for pk, name in channels:
        cells = [row.cell(f"channel-{pk}") for row in reason_rows]
        if not any(c.value for c in cells):
            continue
        series.append(
            {
                "name": name,
                "data": [{"value": c.value, "url": c.url} for c in cells],
            }
        )
    return {"reasons": [row.label for row in reason_rows], "series": series}


def _rep_rows(tally: Tally, links, tenant) -> list[Row]:
    """Per owner: valid leads, those followed up within 72 h, the rate; the leads assigned
    and touched and the median time from assignment to first touch over them (the
    continuous median, as PostgreSQL's percentile_cont: the mean of the middle two)."""
    members = {
        m.pk: m
        for m in Membership.objects.in_tenant(tenant)
        .filter(pk__in=list(tally.reps))
        .select_related("user")
    }
    rows = []
    for owner_id, rep in tally.reps.items():
        member = members.get(owner_id)
        label = member.display_name if member else str(owner_id)
        row_filters = {"owner": owner_id}
        ratio, text = percent(rep.followed_up, rep.valid)
        median = timedelta(seconds=statistics.median(rep.seconds)) if rep.seconds else None
        cells = [
            _count_cell(links, row_filters, "valid", rep.valid),
            _count_cell(links, row_filters, "followed_up", rep.followed_up),
            Cell(
                "follow_up_rate",
                ratio,
                text,
                links(row_filters, "follow_up_rate") if ratio else "",
            ),
            _count_cell(links, row_filters, "touched", rep.touched),
            Cell(
                "median_first_touch",
                None if median is None else median.total_seconds(),
                duration_text(median),
                links(row_filters, "median_first_touch") if median is not None else "",
            ),
        ]
        rows.append(Row(f"rep-{owner_id}", label, cells))
    rows.sort(key=lambda r: r.label)
    return rows
