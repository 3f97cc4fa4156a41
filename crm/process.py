"""Sales process metrics per rep and team, and the weekly diagnosis (F37).

The figures are the registry's (crm.metrics) of group "process": the apps register them
(leads: first touch, 72 h follow-up, next steps kept; opportunities: key people reached,
objections closed) and this module reads them by their group, never by importing the
apps. Each rate is shown per rep and for the team (`totals_and_by(REP)`: the team's
counts are the reps' added up), both numbers linked to their rows (`drill_url`); the
group's metrics no rate is made of (the first-touch median and its counts) are shown as
figures.

The weekly diagnosis: from Friday 17:00 in the tenant's time zone, each active rep gets
one `WeeklyDiagnosis` for the ISO week (the seven local days Saturday to Friday): their
rates against the team's and the targets, the three furthest below (target or team,
whichever is further) with the rate's advice and a link to the rows to act on (the
rate's `act_on` metric, filtered to the rep), and a colleague's practice that worked,
from a `PracticeSource` an app registers (the leads app's compares follow-up patterns on
a comparable lead mix). Beat runs `crm.weekly_diagnosis_all` every 15 minutes; a tenant's
run writes the missing ones of the week and notifies each rep (event
`process.weekly_diagnosis`, in-app and the channels the rep chose). docs/process.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant
from crm.metrics import (
    MEDIAN,
    REP,
    Metric,
    Rate,
    drill_url,
    get_metric,
    metrics,
    previous_period,
    rates,
    totals_and_by,
)
from crm.models import Membership, Tenant, WeeklyDiagnosis
from crm.roles import OWNERS, PROCESS_READERS
from crm.tables import spreadsheet_safe

GROUP = "process"
EVENT = "process.weekly_diagnosis"
DIAGNOSIS_WEEKDAY = 4  # Friday (Monday is 0)
DIAGNOSIS_TIME = time(17, 0)
TOP_ACTIONS = 3
DEFAULT_WEEKS = 4
MAX_DAYS = 366
FAN_OUT_EXPIRES = 900  # seconds: the next round is due by then


# --- The registry's process figures -------------------------------------------------------


def process_rates() -> list[Rate]:
    """The rates of group "process" whose two metrics are registered, by key."""
    return [
        r
        for r in rates()
        if r.group == GROUP and get_metric(r.numerator) and get_metric(r.denominator)
    ]


def process_figures() -> list[Metric]:
    """The group's metrics no rate is made of (numerator, denominator or rows to act on):
    the figures shown on their own, medians first."""
    used = {key for r in rates() for key in (r.numerator, r.denominator, r.act_on) if key}
    found = [m for m in metrics() if m.group == GROUP and m.key not in used]
    return sorted(found, key=lambda m: (m.aggregate != MEDIAN, m.key))


def _needed(rate_list: list[Rate], figures: list[Metric]) -> list[Metric]:
    keys = [k for r in rate_list for k in (r.numerator, r.denominator)]
    keys += [m.key for m in figures]
    return [get_metric(k) for k in dict.fromkeys(keys)]


@dataclass
class Figures:
    """The group's values over one period: the team's, and per rep (membership id)."""

    start: date
    end: date
    team: dict[str, Any]
    reps: dict[Any, dict[str, Any]]

    def of(self, rep: int | None) -> dict[str, Any]:
        return self.team if rep is None else self.reps.get(rep, {})


def read(tenant: Tenant, start: date, end: date, *, using: str | None = None) -> Figures:
    """Every process figure over [start, end], for the team and per rep: two queries per
    family of metrics sharing their rows, whatever the number of rows or reps."""
    needed = _needed(process_rates(), process_figures())
    # The team's counts are the reps' added up (`totals_and_by`): one grouped query per
    # family, and the medians' own.
    team, reps = totals_and_by(needed, REP, tenant=tenant, start=start, end=end, using=using)
    reps.pop("", None)  # rows without a rep count for the team only
    return Figures(start, end, team, reps)


# --- Cells --------------------------------------------------------------------------------


def percent_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def minutes_text(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    whole = round(minutes)
    days, rest = divmod(abs(whole), 24 * 60)
    hours, mins = divmod(rest, 60)
    sign = "−" if whole < 0 else ""
    if days:
        return sign + gettext("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return sign + gettext("%(h)s h %(m)s min") % {"h": hours, "m": mins}
    return sign + gettext("%(m)s min") % {"m": mins}


def figure_text(metric: Metric, value) -> str:
    if value is None:
        return "—"
    if metric.unit == "minutes":
        return minutes_text(value)
    if metric.unit == "days":
        return f"{value:.1f}"
    return str(value)


def _filters(rep: int | None) -> dict | None:
    return None if rep is None else {REP: rep}


@dataclass
class RateCell:
    rate: Rate
    numerator: int
    denominator: int
    numerator_url: str
    denominator_url: str

    @property
    def share(self) -> float | None:
        return self.rate.share(self.numerator, self.denominator)

    @property
    def text(self) -> str:
        return percent_text(self.share)

    @property
    def meets(self) -> bool | None:
        return self.rate.meets(self.share)

    @property
    def missed(self) -> bool:
        return self.meets is False


@dataclass
class FigureCell:
    metric: Metric
    value: Any
    url: str

    @property
    def text(self) -> str:
        return figure_text(self.metric, self.value)

    missed = False


def rate_cell(rate: Rate, values: dict, start: date, end: date, rep: int | None) -> RateCell:
    filters = _filters(rep)
    return RateCell(
        rate,
        values.get(rate.numerator, 0) or 0,
        values.get(rate.denominator, 0) or 0,
        drill_url(rate.numerator, start, end, filters),
        drill_url(rate.denominator, start, end, filters),
    )


def figure_cell(metric: Metric, values: dict, start: date, end: date, rep) -> FigureCell:
    empty = None if metric.aggregate == MEDIAN else 0
    value = values.get(metric.key, empty)
    return FigureCell(metric, value, drill_url(metric.key, start, end, _filters(rep)))


# --- The report ---------------------------------------------------------------------------


def default_period(today: date) -> tuple[date, date]:
    """The last DEFAULT_WEEKS full weeks (Monday to Sunday) before today's week."""
    end = today - timedelta(days=today.weekday() + 1)
    return end - timedelta(days=7 * DEFAULT_WEEKS - 1), end


@dataclass
class Column:
    key: str
    label: Any
    definition: Any
    target: float | None = None
    is_rate: bool = True

    @property
    def target_text(self) -> str:
        return percent_text(self.target) if self.target is not None else ""


@dataclass
class Line:
    """One row of the report: a rep's (member) or the team's, each column's cell for the
    period and the previous one."""

    key: str
    label: str
    member_id: int | None
    cells: list[tuple[RateCell | FigureCell, RateCell | FigureCell]]
    is_team: bool = False


@dataclass
class Report:
    start: date
    end: date
    previous_start: date
    previous_end: date
    columns: list[Column]
    lines: list[Line] = field(default_factory=list)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _cells(rate_list, figure_list, current: Figures, previous: Figures, rep) -> list:
    cells = []
    for rate in rate_list:
        cells.append(
            (
                rate_cell(rate, current.of(rep), current.start, current.end, rep),
                rate_cell(rate, previous.of(rep), previous.start, previous.end, rep),
            )
        )
    for metric in figure_list:
        cells.append(
            (
                figure_cell(metric, current.of(rep), current.start, current.end, rep),
                figure_cell(metric, previous.of(rep), previous.start, previous.end, rep),
            )
        )
    return cells


def report(
    tenant: Tenant,
    start: date,
    end: date,
    *,
    only: Membership | None = None,
    using: str | None = None,
) -> Report:
    """Each rep's process figures over [start, end] and the previous period
    (crm.metrics.previous_period), and the team's. Every active rep is listed, and anyone
    else the figures name (a manager who owns leads, a rep since deactivated); `only`:
    that member's line and the team's."""
    rate_list, figure_list = process_rates(), process_figures()
    previous_start, previous_end = previous_period(start, end)
    current = read(tenant, start, end, using=using)
    previous = read(tenant, previous_start, previous_end, using=using)
    columns = [Column(r.key, r.label, r.definition, r.target) for r in rate_list]
    columns += [Column(m.key, m.label, m.definition, is_rate=False) for m in figure_list]
    result = Report(start, end, previous_start, previous_end, columns)

    if only is not None:
        members = [only]
    else:
        ids = set(current.reps) | set(previous.reps)
        members = list(
            Membership.objects.in_tenant(tenant)
            .filter(Q(pk__in=ids) | Q(role__in=OWNERS, is_active=True, user__is_active=True))
            .select_related("user")
        )
        members.sort(key=lambda m: (m.display_name, m.pk))
    for member in members:
        result.lines.append(
            Line(
                f"rep-{member.pk}",
                member.display_name,
                member.pk,
                _cells(rate_list, figure_list, current, previous, member.pk),
            )
        )
    result.lines.append(
        Line(
            "team",
            gettext("Team"),
            None,
            _cells(rate_list, figure_list, current, previous, None),
            is_team=True,
        )
    )
    return result


def csv_rows(result: Report) -> list[list]:
    """The report as a spreadsheet: a line per rep and the team's; for each rate its
    share, numerator and denominator, then the previous period's share; for each figure
    its value and the previous period's."""
    header = [gettext("rep")]
    for column in result.columns:
        label = spreadsheet_safe(str(column.label))
        if column.is_rate:
            header += [
                label,
                gettext("%(figure)s: counted") % {"figure": label},
                gettext("%(figure)s: out of") % {"figure": label},
                gettext("%(figure)s: previous period") % {"figure": label},
            ]
        else:
            header += [label, gettext("%(figure)s: previous period") % {"figure": label}]
    rows = [header]
    for line in result.lines:
        row = [spreadsheet_safe(line.label)]
        for current, previous in line.cells:
            if isinstance(current, RateCell):
                row += [current.text, current.numerator, current.denominator, previous.text]
            else:
                row += [_plain(current), _plain(previous)]
        rows.append(row)
    return rows


def _plain(cell: FigureCell):
    """A figure for a spreadsheet: minutes as a number with one decimal."""
    if cell.value is None:
        return "—"
    if isinstance(cell.value, float):
        return f"{cell.value:.1f}"
    return cell.value


# --- The colleague's practice (an app's) ---------------------------------------------------


@dataclass(frozen=True)
class PracticeSource:
    """What an app contributes to the weekly diagnosis: for the reps diagnosed, a
    colleague's practice that worked.

    `find(tenant, start, end, rep_ids)` returns {rep id: data} (a rep without a colleague
    to learn from is left out), data being JSON that `describe(data)` words when the
    diagnosis is read: {"colleague": name, "summary": text, "rows": [(label, theirs,
    mine)], "method": text}."""

    key: str
    find: Callable[[Tenant, date, date, list[int]], dict[int, dict]]
    describe: Callable[[dict], dict]


_practices: dict[str, PracticeSource] = {}


def register_practice(source: PracticeSource) -> None:
    _practices[source.key] = source


def practice_sources() -> list[PracticeSource]:
    return sorted(_practices.values(), key=lambda s: s.key)


# --- The weekly diagnosis ------------------------------------------------------------------


def due_week(tenant: Tenant, now: datetime) -> date | None:
    """The Monday of `now`'s ISO week (tenant time) when Friday 17:00 of that week is
    past, else None."""
    tz = tenant.tzinfo
    local = timezone.localtime(now, tz)
    monday = local.date() - timedelta(days=local.weekday())
    friday = monday + timedelta(days=DIAGNOSIS_WEEKDAY)
    due_at = timezone.make_aware(datetime.combine(friday, DIAGNOSIS_TIME), tz)
    return monday if now >= due_at else None


def week_period(monday: date) -> tuple[date, date]:
    """The days a week's diagnosis covers: Saturday before `monday` to its Friday."""
    return monday - timedelta(days=2), monday + timedelta(days=DIAGNOSIS_WEEKDAY)


def _gap(rate: Rate, share: float | None, team_share: float | None) -> tuple[float, str] | None:
    """How far the rep's share is below the target or the team's (whichever is further),
    in share points, and which; None when it is below neither."""
    if share is None:
        return None
    sign = 1 if rate.higher_is_better else -1
    gaps = []
    if rate.target is not None:
        gaps.append(((rate.target - share) * sign, "target"))
    if team_share is not None:
        gaps.append(((team_share - share) * sign, "team"))
    gaps = [g for g in gaps if g[0] > 1e-9]
    return max(gaps) if gaps else None


def diagnosis_data(figures: Figures, rep: int, practice: dict | None) -> dict:
    """What a rep's diagnosis keeps: every rate's numbers (theirs and the team's) and
    target, the figures, the top actions (rate keys, furthest below first) and the
    practice (its source and data)."""
    mine, team = figures.of(rep), figures.team
    entries, gaps = [], []
    for rate in process_rates():
        num, den = mine.get(rate.numerator, 0) or 0, mine.get(rate.denominator, 0) or 0
        team_num = team.get(rate.numerator, 0) or 0
        team_den = team.get(rate.denominator, 0) or 0
        share, team_share = rate.share(num, den), rate.share(team_num, team_den)
        entries.append(
            {
                "key": rate.key,
                "numerator": num,
                "denominator": den,
                "share": share,
                "team_numerator": team_num,
                "team_denominator": team_den,
                "team_share": team_share,
                "target": rate.target,
            }
        )
        gap = _gap(rate, share, team_share)
        if gap is not None:
            gaps.append({"key": rate.key, "gap": round(gap[0], 6), "below": gap[1]})
    gaps.sort(key=lambda g: (-g["gap"], g["key"]))
    figure_entries = [
        {"key": m.key, "value": mine.get(m.key), "team": team.get(m.key)} for m in process_figures()
    ]
    return {
        "rates": entries,
        "figures": figure_entries,
        "actions": gaps[:TOP_ACTIONS],
        "practice": practice,
    }


def _practices_for(tenant: Tenant, start: date, end: date, rep_ids: list[int]) -> dict:
    found: dict[int, dict] = {}
    for source in practice_sources():
        for rep, data in source.find(tenant, start, end, rep_ids).items():
            found.setdefault(rep, {"source": source.key, "data": data})
    return found


def generate(
    tenant: Tenant, *, now: datetime | None = None, week: date | None = None
) -> list[WeeklyDiagnosis]:
    """Write this week's missing diagnoses of the tenant's active reps once Friday 17:00
    (tenant time) is past, and notify each rep of theirs. Inside `tenant_context(tenant)`.
    Idempotent: a rep's diagnosis of a week is written once (a run that comes again, or
    a redelivered message, finds it and does nothing). `week` (a Monday): that past
    week's instead, whatever the time (the demo's). Returns the ones written."""
    from crm.notify import notify
    from crm.tenancy import advisory_lock

    now = now or timezone.now()
    monday = due_week(tenant, now) if week is None else week - timedelta(days=week.weekday())
    if monday is None:
        return []
    advisory_lock("crm.weekly_diagnosis", tenant.pk)
    done = set(WeeklyDiagnosis.objects.filter(week=monday).values_list("membership_id", flat=True))
    reps = [
        m
        for m in Membership.objects.in_tenant(tenant)
        .active()
        .filter(role__in=OWNERS)
        .select_related("user")
        .order_by("pk")
        if m.pk not in done
    ]
    if not reps:
        return []
    start, end = week_period(monday)
    figures = read(tenant, start, end)
    practices = _practices_for(tenant, start, end, [m.pk for m in reps])
    written = []
    for member in reps:
        diagnosis = WeeklyDiagnosis.objects.create(
            tenant=tenant,
            membership=member,
            week=monday,
            start=start,
            end=end,
            data=diagnosis_data(figures, member.pk, practices.get(member.pk)),
            created_at=now,
        )
        notify(
            event=EVENT,
            recipients=member,
            params={"week": f"{monday:%G-W%V}"},
            link=reverse("process_diagnosis", args=[diagnosis.public_id]),
            tenant=tenant,
        )
        written.append(diagnosis)
    return written


@dataclass
class RateLine:
    """One rate of a diagnosis as read: the rep's share, the team's, the target."""

    key: str
    label: Any
    definition: Any
    numerator: int
    denominator: int
    share: float | None
    team_share: float | None
    target: float | None
    numerator_url: str
    denominator_url: str
    meets: bool | None

    @property
    def text(self) -> str:
        return percent_text(self.share)

    @property
    def team_text(self) -> str:
        return percent_text(self.team_share)

    @property
    def target_text(self) -> str:
        return percent_text(self.target)


@dataclass
class Action:
    key: str
    label: Any
    advice: Any
    text: str
    compared: str  # "the target 90.0%" / "the team's 80.0%"
    url: str
    count: int | None


def describe(diagnosis: WeeklyDiagnosis) -> dict:
    """A diagnosis worded in the reader's language: its rates, figures, actions and the
    colleague's practice, every number linked to its rows (rates and metrics no longer
    registered are left out)."""
    data = diagnosis.data or {}
    start, end, rep = diagnosis.start, diagnosis.end, diagnosis.membership_id
    filters = {REP: rep}
    lines = {}
    for entry in data.get("rates", []):
        rate = next((r for r in process_rates() if r.key == entry["key"]), None)
        if rate is None:
            continue
        lines[rate.key] = RateLine(
            rate.key,
            rate.label,
            rate.definition,
            entry["numerator"],
            entry["denominator"],
            entry["share"],
            entry["team_share"],
            entry["target"],
            drill_url(rate.numerator, start, end, filters),
            drill_url(rate.denominator, start, end, filters),
            rate.meets(entry["share"]),
        )
    figures = []
    for entry in data.get("figures", []):
        metric = get_metric(entry["key"])
        if metric is not None:
            figures.append(
                {
                    "label": metric.label,
                    "definition": metric.definition,
                    "text": figure_text(metric, entry["value"]),
                    "team_text": figure_text(metric, entry["team"]),
                    "url": drill_url(metric.key, start, end, filters),
                }
            )
    actions = []
    for entry in data.get("actions", []):
        line = lines.get(entry["key"])
        rate = next((r for r in process_rates() if r.key == entry["key"]), None)
        if line is None or rate is None:
            continue
        if entry["below"] == "target":
            compared = gettext("the target of %(share)s") % {"share": line.target_text}
        else:
            compared = gettext("the team's %(share)s") % {"share": line.team_text}
        target = rate.act_on if get_metric(rate.act_on) else rate.denominator
        count = line.denominator - line.numerator if rate.act_on else None
        actions.append(
            Action(
                rate.key,
                rate.label,
                rate.advice,
                line.text,
                compared,
                drill_url(target, start, end, filters),
                count,
            )
        )
    practice = None
    stored = data.get("practice")
    if stored:
        source = _practices.get(stored.get("source", ""))
        if source is not None:
            practice = source.describe(stored.get("data") or {})
    return {
        "rates": list(lines.values()),
        "figures": figures,
        "actions": actions,
        "practice": practice,
    }


def seed_demo(tenant: Tenant) -> int:
    """The demo's diagnoses: last week's, so the pages have one to show before Friday."""
    today = timezone.localdate(timezone=tenant.tzinfo)
    return len(generate(tenant, week=today - timedelta(days=today.weekday() + 7)))


# --- Registrations and tasks -------------------------------------------------------------


def register() -> None:
    """The kernel's part (CrmConfig.ready): the diagnosis's event and the report's menu
    entry."""
    from crm.navigation import REPORTS, NavItem
    from crm.navigation import register as register_nav
    from crm.notify import EventType, register_event

    register_event(
        EventType(
            key=EVENT,
            label=_("My weekly diagnosis is ready"),
            title=_("Your weekly diagnosis, week %(week)s"),
            body=_(
                "Your process rates against the team's and the targets, the three to work "
                "on first, and a colleague's practice that worked."
            ),
            roles=OWNERS,
        )
    )
    register_nav(
        NavItem(
            "process_report",
            _("Sales process"),
            "process_report",
            "speedometer2",
            group=REPORTS,
            description=_(
                "Per rep and for the team: first-touch median, 72 h follow-up rate, "
                "action completion, key-person coverage, objection closure; and the weekly "
                "diagnoses."
            ),
            roles=PROCESS_READERS,
            order=52,
        )
    )


@app.task(name="crm.weekly_diagnosis_all")
def weekly_diagnosis_all() -> int:
    """Beat, every 15 minutes: queue each active tenant's weekly diagnosis run."""
    return per_active_tenant(weekly_diagnosis, expires=FAN_OUT_EXPIRES)


@app.task(base=TenantTask, name="crm.weekly_diagnosis", round_robin=True)
def weekly_diagnosis(tenant_id: int) -> int:
    """One tenant's diagnoses of the week, when due (`generate`): how many were written."""
    from crm.tenancy import current_tenant

    return len(generate(current_tenant()))
