"""Water levels (F42): a few daily figures of the sales process's health, each with its
target, recorded every night per rep and for the team, and the days that leave their
usual band told to whoever owns them.

A registry, as crm.metrics is for figures: each app registers the levels of its own data
from its AppConfig.ready(); the kernel records and shows them without importing the apps.

    from crm.levels import MINUTES, Level, median_of, register_level

    register_level(
        Level(
            key="leads.response",
            label=_("Response time"),
            definition=_("…one line…"),
            target=lambda tenant: 120.0,  # or a number
            higher_is_better=False,
            unit=MINUTES,
            compute=median_of("leads.response_wait"),
            metric="leads.response_wait",
            floor=10.0,
        )
    )

- `compute(tenant, day, using=None)` returns the day's value per rep, `{membership id:
  Reading(value, sample)}`, and the team's under the key None. `median_of(metric)` and
  `share_of(numerator, denominator)` build it from registered metrics (crm.metrics), so a
  level and the drill-down list of its rows cannot disagree: a median takes one grouped
  query for the reps and one for the team, a share one grouped query for both; the
  day's rows are never read into Python.
- `metric` is the metric whose rows are behind the level (the day's records), so a value
  links to them (`crm.metrics.drill_url`, filtered by the rep for a rep's value).
- `target` is a number or `tenant -> number` (a tenant setting); a SHARE is 0–1,
  MINUTES are minutes. `floor` is the smallest half-width of the usual band (below).

Anomalies. A day's value is judged against the same level's and owner's values of the 28
days before it (`WINDOW`), those present: with at least 14 of them (`MIN_HISTORY`), the
usual band is median ± max(3 × 1.4826 × MAD, floor): MAD is the median absolute deviation
from that median, scaled by 1.4826 to estimate a standard deviation (the row keeps it
unscaled). A value outside the band, on either side, is an anomaly. The floor keeps a
level that barely moves (MAD 0: more than half the days alike) from calling every small
step an anomaly, while a real jump still leaves the band. Nothing is judged with fewer
than 14 values, nor a value taken over fewer rows than the level's `min_sample` (a rep's
day with one lead says little). Each anomaly is told once (`notified_at`): a rep's to the rep, the
team's to the managers (the admins where there is none), linking to the rows behind it.

The nightly job (`nightly`, beat hourly through crm.tasks) records, from 01:00 of the
tenant's local day, every day of the last week not recorded yet, oldest first: the
team's row of each level is written on every recorded day (its value empty without
rows), so a recorded day is known and a run that comes again does nothing. Recording a
day again replaces its rows (`record_day`). docs/levels.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import metrics
from crm.metrics import MEDIAN, REP, Median
from crm.models import LevelDay, Membership, Tenant
from crm.notify import EventType, admins_of, managers_of, notify, register_event
from crm.roles import LEVEL_READERS

MINUTES = "minutes"
SHARE = "share"
UNITS = (MINUTES, SHARE)

WINDOW = 28  # days a value is judged against, and the page's chart
MIN_HISTORY = 14  # values present in the window before anything is judged
BAND = 3.0  # the band's half-width in (scaled) MADs
# The MAD scaled to estimate a standard deviation (1 / Φ⁻¹(3/4)): for normally spread
# values, median ± 3 scaled MADs holds 99.7 % of usual days.
MAD_SCALE = 1.4826
NIGHTLY_HOUR = 1  # the tenant's local hour from which yesterday is recorded
CATCH_UP = 7  # days back a run records what a missed night left
NIGHTLY_EXPIRES = 3600  # seconds: a fan-out still queued when the next is due expires

ANOMALY_EVENT = "levels.anomaly"


@dataclass(frozen=True)
class Reading:
    value: float | None  # minutes, or a share 0–1; None without rows
    sample: int  # the rows it was taken over


Compute = Callable[..., dict[int | None, Reading]]
Target = float | Callable[[Tenant], float]


@dataclass(frozen=True)
class Level:
    key: str  # "<app>.<name>"
    label: Any  # lazy
    definition: Any  # lazy, one or two lines
    target: Target
    higher_is_better: bool
    unit: str  # MINUTES or SHARE
    compute: Compute  # (tenant, day, using=None) -> {membership id | None: Reading}
    metric: str  # the metric whose rows are behind the level
    floor: float  # the usual band's smallest half-width, in the level's unit
    min_sample: int = 1  # a value over fewer rows is recorded, not judged
    order: int = 0
    advice: Any = ""  # lazy: what to do when it misses its target

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"level {self.key!r}: unit is one of {UNITS}")
        if self.floor <= 0:
            raise ValueError(f"level {self.key!r}: the floor is above 0")

    def target_for(self, tenant: Tenant) -> float:
        return float(self.target(tenant) if callable(self.target) else self.target)

    def meets(self, value: float | None, target: float) -> bool | None:
        if value is None:
            return None
        return value >= target if self.higher_is_better else value <= target


_registry: dict[str, Level] = {}


def register_level(level: Level) -> None:
    """Make a level known (from an AppConfig.ready()); registering a key again replaces."""
    _registry[level.key] = level


def levels() -> list[Level]:
    return sorted(_registry.values(), key=lambda lv: (lv.order, lv.key))


def get_level(key: str) -> Level | None:
    return _registry.get(key)


# --- Computing a day from registered metrics ----------------------------------------------


def _metric(key: str) -> metrics.Metric:
    metric = metrics.get_metric(key)
    if metric is None:
        raise LookupError(f"no metric {key!r} is registered")
    return metric


def _rep_path(metric: metrics.Metric) -> str:
    dimension = metric.dimension(REP)
    if dimension is None:
        raise ValueError(f"metric {metric.key!r} has no rep dimension")
    return dimension.path


def median_of(metric_key: str) -> Compute:
    """A level that is a MEDIAN metric's figure over the day's rows: per rep (the metric's
    REP dimension) and for the team; the sample is the rows with a value."""

    def compute(tenant: Tenant, day: date, using: str | None = None):
        metric = _metric(metric_key)
        if metric.aggregate != MEDIAN:
            raise ValueError(f"metric {metric_key!r} is not a median")
        path = _rep_path(metric)
        rows = metrics.rows_of(metric, tenant=tenant, start=day, end=day, using=using).order_by()
        found: dict[int | None, Reading] = {}
        per_rep = (
            rows.filter(**{f"{path}__isnull": False})
            .values(path)
            .annotate(v=Median(metric.of), n=Count(metric.of))
        )
        for row in per_rep:
            found[row[path]] = Reading(row["v"], row["n"])
        team = rows.aggregate(v=Median(metric.of), n=Count(metric.of))
        found[None] = Reading(team["v"], team["n"])
        return found

    return compute


def share_of(numerator_key: str, denominator_key: str) -> Compute:
    """A level that is the share of a day's rows (`denominator`) that count (`numerator`,
    among them): per rep and for the team, in one grouped query; the sample is the
    denominator."""

    def compute(tenant: Tenant, day: date, using: str | None = None):
        numerator, denominator = _metric(numerator_key), _metric(denominator_key)
        both = [numerator, denominator]
        window = {"tenant": tenant, "start": day, "end": day, "using": using}

        def reading(figures: dict) -> Reading:
            counted, total = figures.get(numerator.key, 0), figures.get(denominator.key, 0)
            return Reading(counted / total if total else None, total)

        by_rep = metrics.values_by(both, REP, **window)
        found: dict[int | None, Reading] = {
            owner: reading(figures) for owner, figures in by_rep.items() if owner != ""
        }
        # The team's counts are the reps' added up, rows without a rep ("") included.
        team = {
            metric.key: sum(figures.get(metric.key, 0) for figures in by_rep.values())
            for metric in both
        }
        found[None] = reading(team)
        return found

    return compute


# --- The anomaly rule -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    anomaly: bool
    median: float | None  # of the history; None when too little of it to judge
    mad: float | None

    def band(self, floor: float) -> tuple[float, float] | None:
        if self.median is None or self.mad is None:
            return None
        half = max(BAND * MAD_SCALE * self.mad, floor)
        return self.median - half, self.median + half


def judge(value: float | None, history: Sequence[float | None], floor: float) -> Verdict:
    """Whether `value` leaves the band of `history` (the values of the WINDOW days before,
    None for a day without one): median ± max(3 × 1.4826 × MAD, floor), judged with
    MIN_HISTORY values or more."""
    present = [v for v in history if v is not None]
    if len(present) < MIN_HISTORY:
        return Verdict(False, None, None)
    centre = statistics.median(present)
    mad = statistics.median(abs(v - centre) for v in present)
    verdict = Verdict(False, centre, mad)
    low, high = verdict.band(floor)
    return Verdict(value is not None and not low <= value <= high, centre, mad)


# --- Recording ------------------------------------------------------------------------------


def _history(key: str, day: date) -> dict[int | None, list[float]]:
    """Each owner's values of the level over the WINDOW days before `day`."""
    found: dict[int | None, list[float]] = {}
    rows = LevelDay.objects.filter(
        key=key, day__gte=day - timedelta(days=WINDOW), day__lt=day, value__isnull=False
    ).values_list("owner_id", "value")
    for owner, value in rows:
        found.setdefault(owner, []).append(value)
    return found


def record_level(
    level: Level,
    tenant: Tenant,
    day: date,
    now: datetime,
    readings: dict[int | None, Reading] | None = None,
) -> int:
    """Judge and store one level's rows of `day` (replacing earlier ones): its `readings`,
    computed here unless given. How many anomalies it found."""
    readings = dict(level.compute(tenant, day) if readings is None else readings)
    readings.setdefault(None, Reading(None, 0))
    history = _history(level.key, day)
    rows = []
    for owner, reading in readings.items():
        verdict = judge(reading.value, history.get(owner, []), level.floor)
        if reading.sample < level.min_sample:
            verdict = Verdict(False, verdict.median, verdict.mad)
        rows.append(
            LevelDay(
                tenant=tenant,
                key=level.key,
                day=day,
                owner_id=owner,
                value=reading.value,
                sample=reading.sample,
                anomaly=verdict.anomaly,
                median=verdict.median,
                mad=verdict.mad,
                computed_at=now,
            )
        )
    LevelDay.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "key", "day", "owner"],
        update_fields=["value", "sample", "anomaly", "median", "mad", "computed_at"],
    )
    # A rep who had rows when the day was recorded before and has none now.
    LevelDay.objects.filter(key=level.key, day=day, owner__isnull=False).exclude(
        owner_id__in=[owner for owner in readings if owner is not None]
    ).delete()
    return sum(1 for row in rows if row.anomaly)


@dataclass
class Recorded:
    day: date
    anomalies: int
    told: int


def record_day(
    tenant: Tenant, day: date, *, now: datetime | None = None, tell: bool = True
) -> Recorded:
    """Record every level's rows of `day` for the tenant (inside its tenant_context), then
    tell the owners of its anomalies not told yet (unless `tell` is False)."""
    now = now or timezone.now()
    anomalies = sum(record_level(level, tenant, day, now) for level in levels())
    told = tell_anomalies(tenant, day, now=now) if tell else 0
    return Recorded(day, anomalies, told)


def days_to_record(tenant: Tenant, today: date) -> list[date]:
    """The days of the last CATCH_UP before `today` some level has no team row for."""
    days = [today - timedelta(days=n) for n in range(CATCH_UP, 0, -1)]
    keys = [level.key for level in levels()]
    done = set(
        LevelDay.objects.filter(
            owner__isnull=True, day__in=days, key__in=keys, tenant=tenant
        ).values_list("day", "key")
    )
    return [day for day in days if any((day, key) not in done for key in keys)]


def nightly(tenant: Tenant, *, now: datetime | None = None) -> list[Recorded] | None:
    """The hourly run for one tenant: from NIGHTLY_HOUR of its local day, record the days
    of the last week not recorded yet, oldest first (None before that hour)."""
    now = now or timezone.now()
    local = timezone.localtime(now, timezone=tenant.tzinfo)
    if local.hour < NIGHTLY_HOUR:
        return None
    return [record_day(tenant, day, now=now) for day in days_to_record(tenant, local.date())]


# --- Telling --------------------------------------------------------------------------------


def recipients_of(row: LevelDay, tenant: Tenant) -> list[Membership]:
    """A rep's level: the rep. The team's: the managers (the admins where there is none)."""
    if row.owner_id is not None:
        return [row.owner]
    return list(managers_of(tenant)) or list(admins_of(tenant))


def rows_url(level: Level, day: date, owner_id: int | None) -> str:
    """The drill-down list of the rows behind a day's value (the rep's, or everyone's)."""
    filters = {REP: owner_id} if owner_id is not None else None
    return metrics.drill_url(level.metric, day, day, filters)


def tell_anomalies(tenant: Tenant, day: date, *, now: datetime | None = None) -> int:
    """Notify the owners of `day`'s anomalies, each row once (claimed by setting
    `notified_at`, so a run that comes again, or runs at the same time, tells nobody
    twice). How many rows were told."""
    now = now or timezone.now()
    told = 0
    pending = LevelDay.objects.filter(
        day=day, anomaly=True, notified_at__isnull=True
    ).select_related("owner__user")
    for row in pending:
        level = get_level(row.key)
        if level is None:
            continue
        claimed = LevelDay.objects.filter(pk=row.pk, notified_at__isnull=True).update(
            notified_at=now
        )
        if not claimed:
            continue
        verdict = Verdict(True, row.median, row.mad)
        low, high = verdict.band(level.floor)
        who = gettext("the team")
        if row.owner is not None:
            who = row.owner.display_name
        notify(
            event=ANOMALY_EVENT,
            recipients=recipients_of(row, tenant),
            params={
                "level": str(level.label),
                "who": who,
                "day": day.isoformat(),
                "value": format_value(level, row.value),
                "low": format_value(level, max(low, 0.0)),
                "high": format_value(level, high),
                "target": target_text(level, level.target_for(tenant)),
            },
            link=rows_url(level, day, row.owner_id),
            tenant=tenant,
        )
        told += 1
    return told


# --- Words ----------------------------------------------------------------------------------


def format_value(level: Level, value: float | None) -> str:
    """A value as people read it: "45 min", "2 h", "2 h 5 min", "1 d 3 h"; "86.0%"."""
    if value is None:
        return "—"
    if level.unit == SHARE:
        return f"{value * 100:.1f}%"
    minutes = round(value)
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return gettext("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours and minutes:
        return gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    if hours:
        return gettext("%(h)s h") % {"h": hours}
    return gettext("%(m)s min") % {"m": minutes}


def target_text(level: Level, target: float) -> str:
    """ "≤ 2 h 0 min", "≥ 85.0%"."""
    sign = "≥" if level.higher_is_better else "≤"
    return f"{sign} {format_value(level, target)}"


def chart_number(level: Level, value: float | None) -> float | None:
    """The value on the chart's axis: minutes, or percent."""
    if value is None:
        return None
    return round(value * 100, 1) if level.unit == SHARE else round(value, 1)


# --- Reading back ---------------------------------------------------------------------------


def window_of(today: date) -> tuple[date, date]:
    """The WINDOW recorded days the page shows: up to yesterday."""
    return today - timedelta(days=WINDOW), today - timedelta(days=1)


def recorded(
    start: date, end: date, *, owners: Iterable[int] | None = None, using: str | None = None
) -> list[LevelDay]:
    """The current tenant's recorded rows over [start, end]: the team's and every rep's,
    or the team's and `owners`'."""
    rows = LevelDay.objects.filter(day__gte=start, day__lte=end)
    if owners is not None:
        rows = rows.filter(Q(owner__isnull=True) | Q(owner_id__in=list(owners)))
    if using:
        rows = rows.using(using)
    return list(rows.order_by("key", "day"))


def register_defaults() -> None:
    """The kernel's part (CrmConfig.ready): the page in the menu, the anomaly's event."""
    from crm.navigation import REPORTS, NavItem
    from crm.navigation import register as register_nav

    register_nav(
        NavItem(
            "levels",
            _("Water levels"),
            "levels",
            "water",
            group=REPORTS,
            description=_(
                "Response time, process-data and decision-chain completeness day by day,"
                " against their targets, with the days that left their usual band."
            ),
            roles=LEVEL_READERS,
            order=52,
        )
    )
    register_event(
        EventType(
            key=ANOMALY_EVENT,
            label=_("A water level left its usual band"),
            title=_("%(level)s of %(who)s on %(day)s: %(value)s, outside its usual band"),
            body=_(
                "Usually %(low)s to %(high)s (the median of the last 28 days ± 3 scaled "
                "MADs); "
                "target %(target)s. The link opens the rows behind it."
            ),
        )
    )
